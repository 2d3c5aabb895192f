"""Alert thresholds and the rate limit are validated on the model, so the key page, the
services and the command line refuse the same nonsense with the same sentence."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from keys import services
from tests.helpers import ACTOR

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Zapier",
    "description": "",
    "scopes__contacts__view": "on",
    "alert_volume_per_hour": "",
    "alert_error_rate_percent": "",
    "alert_unused_days": "",
    "rate_limit_per_minute": "",
    "allowed_ips": "",
    "allowed_origins": "",
}

NONSENSE = [
    ("alert_unused_days", "0", "The unused-key threshold is at least 1 day."),
    (
        "alert_error_rate_percent",
        "0",
        "The error-rate threshold is a percentage above 0 and at most 100.",
    ),
    (
        "alert_error_rate_percent",
        "100.5",
        "The error-rate threshold is a percentage above 0 and at most 100.",
    ),
    (
        "alert_error_rate_percent",
        "-3",
        "The error-rate threshold is a percentage above 0 and at most 100.",
    ),
    ("alert_volume_per_hour", "0", "The high-volume threshold is at least 1 request per hour."),
    (
        "rate_limit_per_minute",
        "0",
        "The rate limit is at least 1 request per minute (blank: no limit).",
    ),
]


@pytest.mark.parametrize(("field", "value", "message"), NONSENSE)
def test_key_page_refuses_nonsense_thresholds(
    admin_client: Any, make_key: Any, field: str, value: str, message: str
) -> None:
    key, _ = make_key(name="Zapier")
    response = admin_client.post(
        reverse("admin:keys_apikey_change", args=[key.pk]), {**VALID, field: value}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    key.refresh_from_db()
    assert getattr(key, field) is None
    assert not AuditEntry.objects.filter(key_id=key.pk, action=AuditAction.EDITED).exists()


@pytest.mark.parametrize(("field", "value", "message"), NONSENSE)
def test_services_refuse_the_same_thresholds(
    make_key: Any, field: str, value: str, message: str
) -> None:
    key, _ = make_key()
    number = float(value) if "." in value or field == "alert_error_rate_percent" else int(value)
    with pytest.raises(services.KeyValidationError) as caught:
        services.key_update(key=key, data={field: number}, actor=ACTOR)
    assert caught.value.errors[field] == [message]


def test_error_rate_must_be_a_number_not_nan(make_key: Any) -> None:
    key, _ = make_key()
    with pytest.raises(services.KeyValidationError):
        services.key_update(key=key, data={"alert_error_rate_percent": float("nan")}, actor=ACTOR)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alert_unused_days", "1"),
        ("alert_error_rate_percent", "100"),
        ("alert_error_rate_percent", "0.5"),
        ("alert_volume_per_hour", "1"),
        ("rate_limit_per_minute", "1"),
    ],
)
def test_the_edges_that_make_sense_are_accepted(
    admin_client: Any, make_key: Any, field: str, value: str
) -> None:
    key, _ = make_key(name="Zapier")
    response = admin_client.post(
        reverse("admin:keys_apikey_change", args=[key.pk]), {**VALID, field: value}
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert float(getattr(key, field)) == float(value)
