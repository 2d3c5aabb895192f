"""The rotation cutover: during the grace period the old key's page (and the new one's) shows
which clients still call the old key and which already call the new one, and offers
"Revoke old key now" with when the old key was last used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from keys import services
from keys.usage import flush, insights
from tests.helpers import ACTOR, bearer, generate

pytestmark = pytest.mark.django_db

R = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the rotation
ZAPIER = ("203.0.113.7", "Zapier/1.0")
CRON = ("198.51.100.20", "python-requests/2.32")
NEWAPP = ("192.0.2.9", "new-app/3")


def at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


def call(api, full: str, client: tuple[str, str]) -> None:
    response = api.get(
        "/api/v1/contacts/", REMOTE_ADDR=client[0], HTTP_USER_AGENT=client[1], **bearer(full)
    )
    assert response.status_code == 200


@pytest.fixture
def rotation(api, backend):
    with at(R - timedelta(days=3)):
        old = generate("Zapier connector")
        call(api, old.full_key, ("10.9.9.9", "retired-client/0.1"))  # before the rotation only
        flush.flush()
    with at(R):
        rotated = services.key_rotate(key=old.key, grace=timedelta(hours=24), actor=ACTOR)
    with at(R + timedelta(hours=1)):
        call(api, old.full_key, ZAPIER)
        call(api, rotated.full_key, NEWAPP)
    with at(R + timedelta(hours=2)):
        call(api, old.full_key, CRON)
    with at(R + timedelta(hours=3)):
        call(api, rotated.full_key, CRON)  # cron has moved
        flush.flush()
    return rotated


def test_cutover_lists_old_and_new_clients(rotation):
    rotation.old_key.refresh_from_db()
    with at(R + timedelta(hours=4)):
        cutover = insights.cutover(rotation.old_key)
        assert cutover == insights.cutover(rotation.key)  # the same from either page
    assert cutover["old"].pk == rotation.old_key.pk and cutover["new"].pk == rotation.key.pk
    assert cutover["old_last_used"] == R + timedelta(hours=2)
    rows = [(c["ip"], c["user_agent"], c["old"], c["new"], c["moved"]) for c in cutover["clients"]]
    assert rows == [
        (*ZAPIER, R + timedelta(hours=1), None, False),  # still on the old key: first
        (*CRON, R + timedelta(hours=2), R + timedelta(hours=3), True),
        (*NEWAPP, None, R + timedelta(hours=1), True),
    ]
    assert [c["user_agent"] for c in cutover["still_on_old"]] == ["Zapier/1.0"]


def test_the_key_pages_show_the_cutover_and_offer_revoking_the_old_key(admin_client, rotation):
    old, new = rotation.old_key, rotation.key
    with at(R + timedelta(hours=4)):
        for key in (old, new):
            html = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
            assert 'id="key-cutover-heading"' in html
            assert "Still on the old key" in html and "On the new key" in html
            assert "The old key was last used <strong>2\xa0hours ago</strong>" in html
            assert "by 1 client that has not moved to the new key" in html
            assert f'href="/admin/keys/apikey/{old.pk}/revoke/">Revoke old key now</a>' in html
            assert "retired-client/0.1" not in html.split('id="key-clients-heading"')[0]
        confirm = admin_client.get(f"/admin/keys/apikey/{old.pk}/revoke/").content.decode()
        assert "It was last used <strong>2\xa0hours ago</strong>" in confirm
        assert "still on it: <code>203.0.113.7</code> Zapier/1.0." in confirm
        revoke = admin_client.post(f"/admin/keys/apikey/{old.pk}/revoke/", {"reason": "moved"})
        assert revoke.status_code == 302
        html = admin_client.get(f"/admin/keys/apikey/{new.pk}/change/").content.decode()
        assert 'id="key-cutover-heading"' not in html  # the grace period is over


def test_an_old_key_nobody_calls_any_more_is_safe_to_revoke(admin_client, api, backend):
    with at(R - timedelta(days=1)):
        old = generate("Quiet")
        call(api, old.full_key, ZAPIER)
        flush.flush()
    with at(R):
        rotated = services.key_rotate(key=old.key, grace=timedelta(hours=24), actor=ACTOR)
    with at(R + timedelta(hours=1)):
        call(api, rotated.full_key, ZAPIER)
        flush.flush()
        html = admin_client.get(f"/admin/keys/apikey/{old.key.pk}/change/").content.decode()
    assert "The old key has not been used since the rotation" in html
    assert "Not used since the rotation." in html


def test_no_cutover_outside_a_grace_period(admin_client, make_key):
    key, _ = make_key()
    assert insights.cutover(key) is None
    html = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
    assert "key-cutover-heading" not in html
