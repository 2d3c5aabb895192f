"""Alert and reminder e-mails: what they say (rendered from templates under
``templates/keys/email/``, subject and body, as Django's ``PasswordResetForm.send_mail`` does)
and who gets them (``recipients``). They are queued in the outbox (``outbox`` sends them after
commit, at least once).

A key's secret is never stored, so it can never be in a mail: keys are named by name and
public id only. Links are absolute, from the ``SITE_URL`` setting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from ..conf import key_settings
from ..models import Alert, AlertRecipient, APIKey
from . import outbox

logger = logging.getLogger(__name__)

# What the mails are signed and titled with: the product the admins know, not this app's name.
PRODUCT_NAME = "Intellicon CRM"


def recipients() -> list[str]:
    """The addresses managed in Admin > Alert recipients; while none is stored there, the
    ``API_KEY_ALERT_RECIPIENTS`` default."""
    stored = list(AlertRecipient.objects.order_by("email").values_list("email", flat=True))
    return stored or list(key_settings.ALERT_RECIPIENTS or [])


def absolute(path: str) -> str:
    """``SITE_URL`` + path (without SITE_URL, the path alone: the mail says where to set it)."""
    return key_settings.SITE_URL.rstrip("/") + path


def send_templated(name: str, context: dict[str, Any], to: Sequence[str]) -> None:
    """Render ``keys/email/<name>_subject.txt`` and ``<name>_body.txt`` and queue them (in the
    caller's transaction)."""
    context = {**context, "product_name": PRODUCT_NAME, "site_url": key_settings.SITE_URL}
    subject = "".join(render_to_string(f"keys/email/{name}_subject.txt", context).splitlines())
    body = render_to_string(f"keys/email/{name}_body.txt", context)
    outbox.queue(
        subject=subject.strip(),
        body=body,
        from_email=key_settings.ALERT_FROM or "",
        to=list(to),
    )


def key_page(key: APIKey) -> str:
    return absolute(reverse("admin:keys_apikey_change", args=[key.pk]))


def alert_page(alert: Alert) -> str:
    return absolute(reverse("admin:keys_alert_change", args=[alert.pk]))


def notify_open_alerts(kinds: Iterable[str], now: datetime | None = None) -> int:
    """E-mail every open, not yet notified alert once: its mail is queued in the transaction
    that marks it notified (a conditional update, so two runs never queue one episode twice),
    then the outbox sends it after commit, at least once. Not while an alert is snoozed, and
    never about a key that stopped working (nobody can act on it). Returns the mails queued."""
    to = recipients()
    if not to:
        return 0
    now = now or timezone.now()
    sent = 0
    waiting = (
        Alert.objects.filter(
            resolved_at__isnull=True,
            notified_at__isnull=True,
            kind__in=list(kinds),
            key__in=APIKey.objects.active(now),
        )
        .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))
        .select_related("key")
    )
    for alert in waiting.order_by("pk"):
        with transaction.atomic():
            if not Alert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(
                notified_at=now
            ):
                continue
            send_templated(
                "alert",
                {
                    "alert": alert,
                    "key": alert.key,
                    "page": key_page(alert.key),
                    "alert_url": alert_page(alert),
                },
                to,
            )
        sent += 1
    outbox.deliver()
    return sent


def send_expiry_digest(keys: Sequence[APIKey], within: timedelta, to: Sequence[str]) -> None:
    """Queue one e-mail listing keys that expire within ``within`` (soonest first)."""
    ordered = sorted(keys, key=lambda k: (k.expires_at, k.pk))
    send_templated(
        "expiry_reminder",
        {
            "keys": [{"key": k, "page": key_page(k)} for k in ordered],
            "count": len(ordered),
            "days": within.days,
        },
        to,
    )
