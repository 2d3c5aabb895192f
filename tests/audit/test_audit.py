import pytest

from audit.models import AppendOnlyError, AuditEntry
from audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_entries_are_chained(make_key, actor):
    key, _ = make_key()
    audit_record(action="edited", actor=actor, key=key, before={"name": "a"}, after={"name": "b"})
    first, second = AuditEntry.objects.order_by("seq")
    assert second.prev_hash == first.entry_hash
    assert (first.seq, second.seq) == (1, 2)


def test_entries_cannot_be_changed_or_deleted(make_key):
    make_key()
    entry = AuditEntry.objects.get()
    entry.message = "tampered"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.update(message="x")


def test_control_characters_are_stored_escaped(make_key):
    from audit.actors import Actor

    key, _ = make_key()
    entry = audit_record(
        action="edited", actor=Actor(label="x", user_agent="evil\r\nX-Forged: 1\x00"), key=key
    )
    entry.refresh_from_db()
    assert entry.user_agent == "evil\\x0d\\x0aX-Forged: 1\\x00"
