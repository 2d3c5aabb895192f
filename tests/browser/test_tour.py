"""Every admin page of the API keys, at 1366 and 390 px, light and dark: nothing scrolls
sideways, and a screenshot of each is saved under test-artifacts/screenshots/tour-*.png to be
looked at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from keys import services
from keys.alerts import services as alert_services
from keys.models import Alert, AlertKind, APIKey, UsageHour
from tests.helpers import ACTOR, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"
ROW_ON_SCREEN = """() => {
    const row = document.querySelector('#result_list tbody tr');
    return !row || [...row.children].every(cell => {
        const box = cell.getBoundingClientRect();
        return box.width === 0 || box.right <= window.innerWidth + 1;
    });
}"""


def seed() -> dict[str, Any]:
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    main = services.key_generate(
        name="BI Tool Access",
        description="Metabase dashboards, owner: data team",
        scopes={"contacts": ["view", "export"], "leads": ["view", "export"]},
        actor=ACTOR,
    ).key
    for i in range(0, 168, 3):
        UsageHour.objects.create(
            key=main,
            hour=hour - timedelta(hours=i),
            endpoint="GET /api/v1/contacts/",
            requests=200 + (i * 37) % 400,
            errors=(i * 7) % 30,
        )
    UsageHour.objects.create(key=main, hour=hour, endpoint="GET /api/v1/leads/{id}/", requests=90)
    APIKey.objects.filter(pk=main.pk).update(last_used_at=now - timedelta(minutes=3))
    services.key_update(
        key=main,
        data={"scopes": {"contacts": ["view", "export"]}, "alert_unused_days": 14},
        actor=ACTOR,
    )
    services.key_generate(
        name="Quarterly export",
        scopes={"opportunities": ["export"]},
        actor=ACTOR,
        expiry_policy="custom",
        expiry_date=timezone.localdate() + timedelta(days=45),
    )
    services.key_generate(
        name=("ZapierWebhookIntegrationForTheEuropeanSalesTeamAndTheirPartners" * 2)[:100],
        scopes={"leads": ["create"]},
        actor=ACTOR,
        expiry_policy="never",
    )
    old = services.key_generate(
        name="Zapier Connector", scopes={"leads": ["view"]}, actor=ACTOR
    ).key
    rotated = services.key_rotate(key=old, grace=timedelta(hours=24), actor=ACTOR)
    revoked = services.key_generate(
        name="Old website form", scopes={"contacts": ["create"]}, actor=ACTOR
    ).key
    services.key_revoke(key=revoked, actor=ACTOR, reason="integration retired")
    # Its integration still calls: every call since is a 401.
    APIKey.objects.filter(pk=revoked.pk).update(last_used_at=timezone.now())
    spike = Alert.objects.create(
        key=main,
        kind=AlertKind.ERROR_SPIKE,
        measured_value=14.29,
        threshold=10,
        message="Error spike: 14.3% of 210 requests failed (30 errors) in the hour from "
        f"{hour:%Y-%m-%d %H}:00 UTC (threshold 10%).",
    )
    alert_services.alert_acknowledge(alert=spike, actor=ACTOR)
    Alert.objects.create(
        key=rotated.key,
        kind=AlertKind.HIGH_VOLUME,
        measured_value=10150,
        threshold=10000,
        message="High volume: 10,150 requests in the hour from 2026-03-02 09:00 UTC "
        "(threshold 10,000 per hour).",
    )
    alert_services.recipient_add(email="ops@example.com", actor=ACTOR)
    return {
        "main": main,
        "old": rotated.old_key,
        "new": rotated.key,
        "revoked": revoked,
        "alert": spike,
    }


@pytest.mark.parametrize(
    ("width", "scheme"), [(1366, "light"), (1366, "dark"), (390, "light"), (390, "dark")]
)
def test_every_page(new_page: Any, superuser: Any, shot: Any, width: int, scheme: str) -> None:
    keys = seed()
    page = new_page(width=width, color_scheme=scheme)
    login(page)
    pages = {
        "index": "/admin/",
        "list": "/admin/keys/apikey/",
        "generate": "/admin/keys/apikey/add/",
        "key": f"/admin/keys/apikey/{keys['main'].pk}/change/",
        "key-in-grace": f"/admin/keys/apikey/{keys['old'].pk}/change/",
        "key-replacement": f"/admin/keys/apikey/{keys['new'].pk}/change/",
        "key-revoked": f"/admin/keys/apikey/{keys['revoked'].pk}/change/",
        "rotate": f"/admin/keys/apikey/{keys['main'].pk}/rotate/",
        "revoke": f"/admin/keys/apikey/{keys['main'].pk}/revoke/",
        "revoke-leaked": "/admin/keys/apikey/revoke-leaked/",
        "alerts": "/admin/keys/alert/",
        "alert": f"/admin/keys/alert/{keys['alert'].pk}/change/",
        "recipients": "/admin/keys/alertrecipient/",
        "audit-log": "/admin/audit/auditentry/",
        "user-permissions": f"/admin/auth/user/{superuser.pk}/change/",
    }
    for name, url in pages.items():
        page.goto(url)
        shot(page, f"tour-{name}-{width}-{scheme}")
        if name != "user-permissions":  # Django's own page
            assert page.evaluate(NO_SIDEWAYS_SCROLL), name
            # A list's first row is on screen whole, not cut off at the right.
            assert page.evaluate(ROW_ON_SCREEN), name
    page.goto("/admin/keys/apikey/add/")
    page.fill("#id_name", "Tour key")
    page.get_by_role("button", name="Website contact form").click()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    shot(page, f"tour-show-once-{width}-{scheme}")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
