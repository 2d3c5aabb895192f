"""Existing keys: the owner and the grantor are the person who generated the key, where known
(keys made from the command line or by a since-deleted user have none)."""

from django.db import migrations
from django.db.models import F


def owner_from_creator(apps, schema_editor):
    APIKey = apps.get_model("keys", "APIKey")
    APIKey.objects.filter(created_by__isnull=False, owner__isnull=True).update(
        owner=F("created_by")
    )
    APIKey.objects.filter(granted_by__isnull=True, granted_by_label="").update(
        granted_by=F("created_by"), granted_by_label=F("created_by_label")
    )


class Migration(migrations.Migration):
    dependencies = [("keys", "0005_i16_key_owner")]

    operations = [migrations.RunPython(owner_from_creator, migrations.RunPython.noop)]
