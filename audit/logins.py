"""Admin login lockouts (django-axes): the page a locked-out login gets, and their audit trail.

Axes counts failed logins per username and per client address (``AXES_*`` in settings); at
``ADMIN_LOGIN_FAILURE_LIMIT`` failures that username, or that address, is locked for
``ADMIN_LOGIN_LOCKOUT_MINUTES`` (each further attempt while locked restarts the wait), even with
the right password. ``ADMIN_LOGIN_LOCK_USERNAME=0`` locks addresses only (SECURITY.md, "Admin
login lockout", says why one would). Each lockout is one audit entry (not one per refused
attempt); ``manage.py unlock_login`` ends one early, audited too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from crm_keys.net import client_ip

from .actors import Actor
from .models import AuditAction
from .services import audit_record

LOCKED_TEMPLATE = "admin/login_locked.html"


def lockout_minutes() -> int:
    return max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))


def locked_message(now: datetime | None = None) -> str:
    """What the locked-out login page says: why, until when (the attempt that got this page
    restarted the wait), and who can end it sooner."""
    until = timezone.localtime((now or timezone.now()) + settings.AXES_COOLOFF_TIME)
    # The end of the minute, so "after 12:47" is never a minute early.
    until = (until + timedelta(seconds=59)).replace(second=0, microsecond=0)
    # Axes locks when the username or the address is over the limit, without saying which;
    # the page names both possibilities and no command (it is shown to anyone).
    if "username" in settings.AXES_LOCKOUT_PARAMETERS:
        what = "for this username or from this address"
    else:
        what = "from this address"
    return (
        f"Too many failed logins {what}: login is locked for {lockout_minutes()} minutes. Try "
        f"again after {until:%Y-%m-%d %H:%M %Z}; an attempt before then starts the wait again. "
        "An administrator can unlock it sooner."
    )


def login_client_ip(request: HttpRequest) -> str | None:
    """The address axes counts: the one the API's limiter uses (trusted proxies honoured).
    None when unreadable (axes stores it in an IP column)."""
    return client_ip(request)


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """The admin login page again, saying why and for how long (429)."""
    username = (credentials or {}).get("username", "") if isinstance(credentials, dict) else ""
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "app_path": request.get_full_path(),
        "form": AdminAuthenticationForm(request, initial={"username": username[:150]}),
        "locked_message": locked_message(),
        "site_header": admin.site.site_header,
    }
    response = TemplateResponse(request, LOCKED_TEMPLATE, context, status=429)
    return response.render()  # returned from a middleware, past the handler's rendering


def _audit_lockout(request: HttpRequest, username: str | None, ip_address: str | None) -> None:
    # Axes signals on the failure that locks and on every refused attempt after it (each one
    # counted, restarting the wait): only the first is an audit entry, so an attacker who keeps
    # trying cannot flood the log.
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    audit_record(
        action=AuditAction.LOGIN_LOCKED_OUT,
        actor=Actor(
            label="anonymous",
            ip=ip_address or None,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        ),
        message=(
            f"Admin login locked after {settings.AXES_FAILURE_LIMIT} failed attempts "
            f"({lockout_minutes()} minutes): address {ip_address}, username "
            f"{(username or '')[:150]!r}."
        ),
    )


def unlock(*, actor: Actor, username: str | None, ip_address: str | None) -> int:
    """End a lockout early (the username's, the address's, or both); audited."""
    from axes.utils import reset

    cleared = 0
    if username:
        cleared += reset(username=username)
    if ip_address:
        cleared += reset(ip=ip_address)
    what = " and ".join(
        part
        for part in (
            f"user {username!r}" if username else "",
            f"address {ip_address}" if ip_address else "",
        )
        if part
    )
    audit_record(
        action=AuditAction.LOGIN_UNLOCKED,
        actor=actor,
        message=f"Admin login unlocked for {what} ({cleared} failed-attempt records cleared).",
    )
    return cleared


def _on_locked_out(
    sender: Any, request: HttpRequest, username: str, ip_address: str, **kwargs: Any
) -> None:
    _audit_lockout(request, username, ip_address)


def connect() -> None:
    """Called from AuditConfig.ready()."""
    from axes.signals import user_locked_out

    user_locked_out.connect(_on_locked_out, dispatch_uid="audit-login-locked-out")
