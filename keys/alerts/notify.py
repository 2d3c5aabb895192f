"""Alert and reminder e-mails, rendered from templates under ``templates/keys/email/`` (subject
and body, as Django's ``PasswordResetForm.send_mail`` does) and sent to ``ALERT_RECIPIENTS``.

A key's secret is never stored, so it can never be in a mail: keys are named by name and
public id only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from ..conf import key_settings
from ..models import Alert, APIKey

logger = logging.getLogger(__name__)


def recipients() -> list[str]:
    return list(key_settings.ALERT_RECIPIENTS or [])


def send_templated(name: str, context: dict[str, Any], to: Sequence[str]) -> None:
    """Render ``keys/email/<name>_subject.txt`` and ``<name>_body.txt`` and send them."""
    subject = "".join(render_to_string(f"keys/email/{name}_subject.txt", context).splitlines())
    body = render_to_string(f"keys/email/{name}_body.txt", context)
    send_mail(
        subject=subject.strip(),
        message=body,
        from_email=key_settings.ALERT_FROM or None,
        recipient_list=list(to),
    )


def key_page(key: APIKey) -> str:
    return reverse("admin:keys_apikey_change", args=[key.pk])


def notify_open_alerts(kinds: Iterable[str], now: datetime | None = None) -> int:
    """E-mail every open, not yet notified alert once. Each alert is claimed with a conditional
    update before sending, so two runs never mail one episode twice; a failed send releases the
    claim and the next run retries."""
    to = recipients()
    if not to:
        return 0
    now = now or timezone.now()
    sent = 0
    waiting = Alert.objects.filter(
        resolved_at__isnull=True, notified_at__isnull=True, kind__in=list(kinds)
    ).select_related("key")
    for alert in waiting.order_by("pk"):
        if not Alert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(notified_at=now):
            continue
        try:
            send_templated(
                "alert", {"alert": alert, "key": alert.key, "page": key_page(alert.key)}, to
            )
        except Exception:
            logger.exception("alert e-mail failed; will retry")
            Alert.objects.filter(pk=alert.pk).update(notified_at=None)
            continue
        sent += 1
    return sent


def send_expiry_digest(keys: Sequence[APIKey], within: timedelta, to: Sequence[str]) -> None:
    """One e-mail listing keys that expire within ``within`` (soonest first)."""
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
