"""The chain's MAC (audit/chain.py): a column, and a MAC for every entry written before it,
under the chain key of the settings this migration runs with (so existing chains keep
verifying). Entries are append-only; on PostgreSQL the trigger is suspended for this one
UPDATE, inside the migration's transaction."""

from django.db import migrations, models


def sign_existing_entries(apps, schema_editor):
    from audit.chain import entry_mac

    AuditEntry = apps.get_model("audit", "AuditEntry")
    connection = schema_editor.connection
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
        last = 0
        while True:
            page = list(
                AuditEntry.objects.filter(seq__gt=last, mac="")
                .order_by("seq")
                .values_list("seq", "entry_hash")[:5000]
            )
            if not page:
                break
            cursor.executemany(
                "UPDATE audit_auditentry SET mac = %s WHERE seq = %s",
                [(entry_mac(entry_hash), seq) for seq, entry_hash in page],
            )
            last = page[-1][0]
        if postgres:
            cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_i16_policy_changed")]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="mac",
            field=models.CharField(default="", editable=False, max_length=80),
        ),
        migrations.RunPython(sign_existing_entries, migrations.RunPython.noop),
    ]
