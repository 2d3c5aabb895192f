"""Audit entries for requests refused by a key's IP allowlist: the first time per key, address
and day. This is the refusal path only; accepted requests never write."""

from __future__ import annotations

import threading

from django.http import HttpRequest
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record

_seen: set[tuple[int, str, str]] = set()
_lock = threading.Lock()


def record_ip_denial(key: object, ip: str | None, request: HttpRequest) -> None:
    day = timezone.localdate().isoformat()
    marker = (key.pk, ip or "", day)  # type: ignore[attr-defined]
    with _lock:
        if marker in _seen:
            return
        if len(_seen) > 50_000:
            _seen.clear()
        _seen.add(marker)
    message = f"request from {ip or 'unknown address'} refused: not in the key's IP allowlist"
    already = AuditEntry.objects.filter(
        action=AuditAction.ACCESS_DENIED,
        key_id=key.pk,  # type: ignore[attr-defined]
        created_at__date=timezone.localdate(),
        message=message,
    ).exists()
    if not already:
        audit_record(
            action=AuditAction.ACCESS_DENIED,
            actor=Actor(
                label=f"api-key:{key.public_id}",
                ip=ip,  # type: ignore[attr-defined]
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            ),
            key=key,
            message=message,
        )


def reset_local_state() -> None:
    with _lock:
        _seen.clear()
