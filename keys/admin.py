"""Admin > API Keys: list, Generate (with the show-once page), key page, Rotate and Revoke.

Every change goes through ``keys.services`` with the admin user as the actor; the admin never
saves a key itself. A new key's value exists only in the POST response that creates it: it is
rendered into that response (``Cache-Control: no-store``) and never put in a redirect, the
session, the messages framework, a cookie or a log.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince, timeuntil
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from audit.actors import Actor
from audit.admin import ReadOnlyAdminMixin
from audit.models import AuditEntry
from crm.modules import ACTION_LABELS, ACTIONS, MODULES

from . import selectors, services
from .crypto import public_id_from_ref
from .forms import KeyChangeForm, KeyGenerateForm, RevokeForm, RotateForm
from .models import Alert, APIKey, KeyStatus
from .scopes import describe
from .usage_views import usage_csv

# --- One-time form tokens ------------------------------------------------------------------

_ISSUED = "keys_admin_nonces_issued"
_USED = "keys_admin_nonces_used"
_NONCES_KEPT = 50
_NONCE_TTL = 60 * 60 * 24


def issue_form_nonce(request: HttpRequest) -> str:
    """A fresh token for a Generate/Rotate form, remembered in the user's session."""
    nonce = secrets.token_urlsafe(24)
    request.session[_ISSUED] = [*request.session.get(_ISSUED, [])[-(_NONCES_KEPT - 1) :], nonce]
    return nonce


def consume_form_nonce(request: HttpRequest, nonce: str) -> str:
    """Mark a token used *before* the key is created. Returns "ok", "used" or "unknown".

    The session records it for later submissions (reload, back button); ``cache.add`` is atomic,
    so two simultaneous submissions (double click) cannot both get "ok"."""
    used = request.session.get(_USED, [])
    if nonce in used:
        return "used"
    issued = request.session.get(_ISSUED, [])
    if nonce not in issued:
        return "unknown"
    digest = hashlib.sha256(nonce.encode()).hexdigest()
    if not cache.add(f"keys-admin-nonce:{digest}", 1, timeout=_NONCE_TTL):
        return "used"
    request.session[_ISSUED] = [n for n in issued if n != nonce]
    request.session[_USED] = [*used[-(_NONCES_KEPT - 1) :], nonce]
    request.session.save()
    return "ok"


def no_store(response: HttpResponse) -> HttpResponse:
    """Headers for a page that shows a key (or might have): never cached or framed. (Not
    ``Referrer-Policy: no-referrer``: Chromium then sends ``Origin: null`` and CSRF fails.)"""
    patch_cache_control(
        response, no_store=True, no_cache=True, must_revalidate=True, private=True, max_age=0
    )
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    response["X-Frame-Options"] = "DENY"
    return response


# --- Display helpers ------------------------------------------------------------------------

STATUS_CLASSES = {
    KeyStatus.ACTIVE: "active",
    KeyStatus.EXPIRED: "expired",
    KeyStatus.REVOKED: "revoked",
}


def status_badge(key: APIKey, now: Any = None) -> str:
    now = now or timezone.now()
    status = key.status_at(now)
    html = format_html(
        '<span class="key-badge key-badge--{}">{}</span>', STATUS_CLASSES[status], status.label
    )
    if key.in_grace_at(now):
        html += format_html(
            ' <span class="key-badge key-badge--grace" title="Replaced by rotation; it works until'
            ' {}">Rotated · grace until {}</span>',
            timezone.localtime(key.grace_ends_at).strftime("%Y-%m-%d %H:%M %Z"),
            timezone.localtime(key.grace_ends_at).strftime("%b %d %H:%M"),
        )
    return html


def ago(when: Any, now: Any = None) -> str:
    now = now or timezone.now()
    if now - when < timedelta(minutes=1):
        return "just now"
    return f"{timesince(when, now, depth=1)} ago"


def expiry_html(key: APIKey, now: Any = None) -> str:
    now = now or timezone.now()
    if key.expires_at is None:
        return mark_safe(
            '<span class="key-expiry key-expiry--never" title="Not recommended">Never</span>'
        )
    when = timezone.localtime(key.expires_at).strftime("%Y-%m-%d")
    if key.expires_at <= now:
        return format_html(
            '<span class="key-expiry key-expiry--past"><span class="nowrap">{}</span><br>'
            "<small>expired {}</small></span>",
            when,
            ago(key.expires_at, now),
        )
    css = "soon" if key.expires_at - now <= timedelta(days=7) else "later"
    return format_html(
        '<span class="key-expiry key-expiry--{}"><span class="nowrap">{}</span><br>'
        '<small class="nowrap">in {}</small></span>',
        css,
        when,
        timeuntil(key.expires_at, now, depth=1),
    )


def scopes_table(scopes: dict[str, list[str]]) -> str:
    """A read-only permission matrix (revoked keys, users without change permission)."""
    head = format_html_join("", '<th scope="col">{}</th>', ((ACTION_LABELS[a],) for a in ACTIONS))
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th>{}</tr>',
        (
            (
                module.label,
                format_html_join(
                    "",
                    "{}",
                    (
                        (
                            mark_safe(
                                '<td class="granted">✓<span class="visually-hidden"> yes</span></td>'
                            )
                            if a in scopes.get(module.name, ())
                            else mark_safe(
                                '<td class="denied">—<span class="visually-hidden"> no</span></td>'
                            ),
                        )
                        for a in ACTIONS
                    ),
                ),
            )
            for module in MODULES.values()
        ),
    )
    return format_html(
        '<table class="scope-matrix scope-matrix--readonly"><thead><tr><td></td>{}</tr></thead>'
        "<tbody>{}</tbody></table>",
        head,
        rows,
    )


# --- List filters ---------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    """Computed from timestamps at request time (never a stored column that can go stale)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.value, s.label) for s in KeyStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in KeyStatus.values:
            return queryset.with_status(self.value())
        return queryset


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiration"
    parameter_name = "expiring"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("7d", "Expiring within 7 days"), ("never", "Never expires")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "7d":
            return queryset.active(now).filter(
                expires_at__gt=now, expires_at__lte=now + timedelta(days=7)
            )
        if self.value() == "never":
            return queryset.filter(expires_at__isnull=True)
        return queryset


class UsageFilter(admin.SimpleListFilter):
    title = "usage"
    parameter_name = "usage"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unused30", "Unused 30+ days"), ("never", "Never used")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        cutoff = now - timedelta(days=30)
        if self.value() == "unused30":
            # Active keys nobody has called for 30 days (never-used keys count from creation):
            # the manual's "investigate and revoke if no longer needed".
            return queryset.active(now).filter(
                Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
            )
        if self.value() == "never":
            return queryset.filter(last_used_at__isnull=True)
        return queryset


# --- The API key admin ----------------------------------------------------------------------


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    form = KeyChangeForm
    change_list_template = "admin/keys/apikey/change_list.html"
    change_form_template = "admin/keys/apikey/change_form.html"

    list_display = [
        "name",
        "key_column",
        "created_column",
        "expires_column",
        "last_used_column",
        "status_column",
        "requests_24h_column",
    ]
    list_display_links = ["name"]
    list_filter = [StatusFilter, ExpiryFilter, UsageFilter]
    search_fields = ["name", "description", "public_id"]
    search_help_text = "Search by name, description or key (icrm_…)."
    ordering = ["-created_at", "-id"]
    list_per_page = 50
    actions = ["revoke_selected"]
    readonly_fields = [
        "status_display",
        "key_column",
        "created_by_display",
        "created_at",
        "expires_display",
        "last_used_column",
        "rotation_display",
        "permissions_table",
    ]

    class Media:
        css = {"all": ("keys/admin.css",)}

    # Permissions ----------------------------------------------------------------------------

    def has_delete_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return False  # keys are revoked, never deleted: the audit trail must keep pointing at them

    def has_change_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        if obj is not None and obj.status == KeyStatus.REVOKED:
            return False  # a revoked key can never be used again: its page is read-only
        return super().has_change_permission(request, obj)

    def has_rotate_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.rotate_apikey")

    def has_revoke_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.revoke_apikey")

    # List -----------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        open_alerts = Alert.objects.filter(key=OuterRef("pk"), resolved_at__isnull=True)
        return super().get_queryset(request).annotate(has_open_alert=Exists(open_alerts))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # Admins paste the key as shown everywhere else: icrm_<public id>…
        return super().get_search_results(request, queryset, public_id_from_ref(search_term))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # Seven columns and the filters need the width: the breadcrumbs lead everywhere else.
        context = {
            "title": "API keys",
            "is_nav_sidebar_enabled": False,
            # Failed attempts with keys that match no key: a brute-force or misconfiguration signal.
            "unknown_key_requests": selectors.unknown_key_requests(),
        }
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # One aggregate query for the page's keys, whatever the page size.
        page = list(changelist.result_list)
        counts = selectors.requests_24h_by_key([k.pk for k in page])
        for key in page:
            key.requests_24h = counts.get(key.pk, 0)
        return changelist

    @admin.display(description="Key")
    def key_column(self, obj: APIKey) -> str:
        return format_html('<code class="key-id">{}</code>', obj.display_id)

    @admin.display(description="Created", ordering="created_at")
    def created_column(self, obj: APIKey) -> str:
        local = timezone.localtime(obj.created_at)
        return format_html(
            '<span class="nowrap" title="{}">{}</span>',
            local.strftime("%Y-%m-%d %H:%M %Z"),
            local.strftime("%Y-%m-%d"),
        )

    @admin.display(description="Expires", ordering="expires_at")
    def expires_column(self, obj: APIKey) -> str:
        return expiry_html(obj)

    @admin.display(description="Last used", ordering="last_used_at")
    def last_used_column(self, obj: APIKey) -> str:
        if obj.last_used_at is None:
            return mark_safe('<span class="key-muted">Never</span>')
        return format_html(
            '<span title="{}">{}</span>',
            timezone.localtime(obj.last_used_at).strftime("%Y-%m-%d %H:%M %Z"),
            ago(obj.last_used_at),
        )

    @admin.display(description="Status")
    def status_column(self, obj: APIKey) -> str:
        html = status_badge(obj)
        if getattr(obj, "has_open_alert", False):
            html += mark_safe(' <span class="key-badge key-badge--alert">Alert</span>')
        return html

    @admin.display(description="Requests (24h)")
    def requests_24h_column(self, obj: APIKey) -> str:
        return format_html(
            '<span class="key-number">{}</span>', f"{getattr(obj, 'requests_24h', 0):,}"
        )

    # Bulk revoke ----------------------------------------------------------------------------

    @admin.action(permissions=["revoke"], description="Revoke selected keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        now = timezone.now()
        keys = list(queryset)
        revocable = [k for k in keys if k.status_at(now) != KeyStatus.REVOKED]
        form = RevokeForm(request.POST if request.POST.get("post") == "yes" else None)
        if request.POST.get("post") == "yes" and form.is_valid():
            actor = Actor.from_request(request)
            done = 0
            for key in revocable:
                try:
                    services.key_revoke(key=key, actor=actor, reason=form.cleaned_data["reason"])
                    done += 1
                except services.KeyServiceError as exc:
                    self.message_user(request, f"{key}: {exc}", messages.WARNING)
            self.message_user(
                request,
                f"Revoked {done} API key{'s' if done != 1 else ''}. "
                "Requests with them are now rejected with 401 Unauthorized.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke API keys",
            "opts": self.opts,
            "revocable": revocable,
            "already_revoked": [k for k in keys if k not in revocable],
            "queryset": keys,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/keys/apikey/revoke_selected_confirmation.html", context
        )

    # URLs -----------------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/rotate/",
                wrap(self.rotate_view),
                name="{}_{}_rotate".format(*info),
            ),
            path(
                "<path:object_id>/revoke/",
                wrap(self.revoke_view),
                name="{}_{}_revoke".format(*info),
            ),
            path(
                "<path:object_id>/usage.csv",
                wrap(usage_csv),
                name="{}_{}_usage_csv".format(*info),
            ),
            *super().get_urls(),
        ]

    def _page_context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": self.has_view_permission(request),
            "media": self.media,
            **extra,
        }

    def _get_key_or_404(self, request: HttpRequest, object_id: str) -> APIKey:
        key = self.get_object(request, unquote(object_id))
        if key is None:
            raise Http404("No such API key.")
        return key

    # Generate ---------------------------------------------------------------------------------

    @method_decorator(sensitive_post_parameters())
    @method_decorator(sensitive_variables("generated"))
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = KeyGenerateForm(request.POST)
            if form.is_valid():
                state = consume_form_nonce(request, form.cleaned_data["form_nonce"])
                if state == "used":
                    return self._already_submitted(request)
                if state == "ok":
                    data = form.cleaned_data
                    try:
                        generated = services.key_generate(
                            name=data["name"],
                            description=data["description"],
                            scopes=data["scopes"],
                            expiry_policy=data["expiry_policy"],
                            expiry_date=data["expiry_date"],
                            actor=Actor.from_request(request),
                        )
                    except services.KeyServiceError as exc:
                        form.add_error(None, str(exc))
                    else:
                        return self._show_once(
                            request, key=generated.key, full_key=generated.full_key
                        )
                else:
                    form.add_error(
                        None,
                        "This form has expired. Check the key list before generating again; "
                        "then submit this form once more.",
                    )
                # A new token for the next attempt; the spent one stays spent.
                form.data = form.data.copy()
                form.data["form_nonce"] = issue_form_nonce(request)
        else:
            form = KeyGenerateForm(initial={"form_nonce": issue_form_nonce(request)})
        context = self._page_context(
            request,
            "Generate API key",
            form=form,
            media=self.media + form.media,
            errors=form.errors,
            add=True,
            **(extra_context or {}),
        )
        request.current_app = self.admin_site.name
        return no_store(TemplateResponse(request, "admin/keys/apikey/generate.html", context))

    @method_decorator(sensitive_variables("full_key"))
    def _show_once(
        self,
        request: HttpRequest,
        *,
        key: APIKey,
        full_key: str,
        old_key: APIKey | None = None,
    ) -> HttpResponse:
        api_root = request.build_absolute_uri("/api/v1/")
        viewable = [m for m, actions in key.scopes.items() if "view" in actions]
        example_url = f"{api_root}{viewable[0]}/" if viewable else f"{api_root}key/"
        context = self._page_context(
            request,
            "API key rotated" if old_key else "API key generated",
            key=key,
            old_key=old_key,
            full_key=full_key,
            scopes_text=describe(key.scopes),
            example_url=example_url,
            key_url=reverse("admin:keys_apikey_change", args=[key.pk]),
        )
        request.current_app = self.admin_site.name
        return no_store(TemplateResponse(request, "admin/keys/apikey/show_once.html", context))

    def _already_submitted(self, request: HttpRequest) -> HttpResponse:
        context = self._page_context(request, "Form already submitted", full_key=None)
        request.current_app = self.admin_site.name
        return no_store(TemplateResponse(request, "admin/keys/apikey/show_once.html", context))

    # Key page ---------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: APIKey | None = None) -> list[Any]:
        editable = obj is not None and self.has_change_permission(request, obj)
        return [
            (None, {"fields": ["name", "description"]}),
            (
                "Key",
                {
                    "fields": [
                        ("status_display", "key_column"),
                        ("created_at", "created_by_display"),
                        ("expires_display", "last_used_column"),
                        "rotation_display",
                    ]
                },
            ),
            ("Permissions", {"fields": ["scopes" if editable else "permissions_table"]}),
            (
                "Usage alerts",
                {
                    "classes": ["collapse"],
                    "fields": [
                        "alert_volume_per_hour",
                        "alert_error_rate_percent",
                        "alert_unused_days",
                        "alerts_muted",
                    ],
                },
            ),
            (
                "Protections",
                {
                    "classes": ["collapse"],
                    "fields": ["rate_limit_per_minute", "allowed_ips", "allowed_origins"],
                },
            ),
        ]

    @admin.display(description="Status")
    def status_display(self, obj: APIKey) -> str:
        html = status_badge(obj)
        if obj.revoked_at:
            html += format_html(
                ' <span class="key-muted">by {} on {}{}</span>',
                obj.revoked_by_label or "—",
                timezone.localtime(obj.revoked_at).strftime("%Y-%m-%d %H:%M"),
                f" ({obj.revoke_reason})" if obj.revoke_reason else "",
            )
        return html

    @admin.display(description="Created by")
    def created_by_display(self, obj: APIKey) -> str:
        return obj.created_by_label or (obj.created_by.get_username() if obj.created_by else "—")

    @admin.display(description="Expires")
    def expires_display(self, obj: APIKey) -> str:
        return format_html(
            "{} <span class='key-muted'>({})</span>",
            expiry_html(obj),
            obj.get_expiry_policy_display(),
        )

    @admin.display(description="Rotation")
    def rotation_display(self, obj: APIKey) -> str:
        parts = []
        if obj.replaced_by_id:
            new = obj.replaced_by
            parts.append(
                format_html(
                    'Replaced by <a href="{}"><code class="key-id">{}</code></a>; '
                    "this key {} at {}.",
                    reverse("admin:keys_apikey_change", args=[new.pk]),
                    new.display_id,
                    "stops working" if obj.in_grace else "stopped working",
                    timezone.localtime(obj.grace_ends_at).strftime("%Y-%m-%d %H:%M %Z"),
                )
            )
        old = APIKey.objects.filter(replaced_by=obj).first()
        if old is not None:
            parts.append(
                format_html(
                    'Replaces <a href="{}"><code class="key-id">{}</code></a> '
                    "(grace period {} {}).",
                    reverse("admin:keys_apikey_change", args=[old.pk]),
                    old.display_id,
                    "ends" if old.in_grace else "ended",
                    timezone.localtime(old.grace_ends_at).strftime("%Y-%m-%d %H:%M %Z")
                    if old.grace_ends_at
                    else "",
                )
            )
        if not parts:
            return "Not rotated."
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts))

    @admin.display(description="Permissions")
    def permissions_table(self, obj: APIKey) -> str:
        return scopes_table(obj.scopes)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: APIKey | None = None,
    ) -> HttpResponse:
        if obj is not None:
            now = timezone.now()
            status = obj.status_at(now)
            can_audit = request.user.has_perm("audit.view_auditentry")
            context.update(
                {
                    "usage": selectors.key_usage(obj),
                    "open_alerts": list(obj.alerts.filter(resolved_at__isnull=True)),
                    "audit_entries": list(AuditEntry.objects.filter(key_id=obj.pk)[:20]),
                    "audit_log_url": (
                        reverse("admin:audit_auditentry_changelist") + f"?key_id={obj.pk}"
                        if can_audit
                        else ""
                    ),
                    "can_rotate": self.has_rotate_permission(request, obj)
                    and status == KeyStatus.ACTIVE
                    and obj.replaced_by_id is None,
                    "can_revoke": self.has_revoke_permission(request, obj)
                    and status != KeyStatus.REVOKED,
                    "key_status": status,
                    # "Add" is the Generate page, with its own show-once flow.
                    "show_save_and_add_another": False,
                }
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: APIKey, form: Any, change: bool) -> None:
        # The form validated the input in clean(); the service applies it, writes the audit
        # entries (scopes before/after) and locks the row.
        try:
            services.key_update(
                key=obj.pk, actor=Actor.from_request(request), **form.service_changes()
            )
        except services.KeyServiceError as exc:
            # Only a race (revoked meanwhile) gets here: report it instead of a 500.
            request._key_update_error = str(exc)  # type: ignore[attr-defined]
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # no relations to save; the ModelForm must not write anything itself

    def response_change(self, request: HttpRequest, obj: APIKey) -> HttpResponse:
        error = getattr(request, "_key_update_error", None)
        if error:
            self.message_user(request, error, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[obj.pk]))
        return super().response_change(request, obj)

    # Rotate -----------------------------------------------------------------------------------

    @method_decorator(sensitive_post_parameters())
    @method_decorator(sensitive_variables("rotated"))
    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        key = self._get_key_or_404(request, object_id)
        error = ""
        if request.method == "POST":
            form = RotateForm(request.POST)
            if form.is_valid():
                state = consume_form_nonce(request, form.cleaned_data["form_nonce"])
                if state == "used":
                    return self._already_submitted(request)
                if state == "ok":
                    try:
                        rotated = services.key_rotate(
                            key=key,
                            grace=form.cleaned_data["grace"],
                            actor=Actor.from_request(request),
                        )
                    except services.KeyServiceError as exc:
                        error = str(exc)
                    else:
                        return self._show_once(
                            request,
                            key=rotated.key,
                            full_key=rotated.full_key,
                            old_key=rotated.old_key,
                        )
                else:
                    error = "This form has expired. Check the key page, then submit once more."
            form = RotateForm(
                initial={
                    "form_nonce": issue_form_nonce(request),
                    "grace": request.POST.get("grace", "24h"),
                }
            )
        else:
            form = RotateForm(initial={"form_nonce": issue_form_nonce(request), "grace": "24h"})
        status = key.status
        if not error and status != KeyStatus.ACTIVE:
            error = f"This key is {status.label.lower()}; only an active key can be rotated."
        elif not error and key.replaced_by_id:
            error = "This key was already rotated; rotate its replacement instead."
        context = self._page_context(
            request,
            "Rotate API key",
            object=key,
            original=key,
            form=form,
            error=error,
            can_submit=status == KeyStatus.ACTIVE and not key.replaced_by_id,
        )
        request.current_app = self.admin_site.name
        return no_store(
            TemplateResponse(request, "admin/keys/apikey/rotate_confirmation.html", context)
        )

    # Revoke -----------------------------------------------------------------------------------

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_revoke_permission(request):
            raise PermissionDenied
        key = self._get_key_or_404(request, object_id)
        error = ""
        form = RevokeForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                services.key_revoke(
                    key=key, actor=Actor.from_request(request), reason=form.cleaned_data["reason"]
                )
            except services.KeyServiceError as exc:
                error = str(exc)
            else:
                self.message_user(
                    request,
                    f"The API key “{key.name}” ({key.display_id}) was revoked. Every request "
                    "with it is now rejected with 401 Unauthorized.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[key.pk]))
        status = key.status
        if not error and status == KeyStatus.REVOKED:
            error = "This key is already revoked."
        context = self._page_context(
            request,
            "Revoke API key",
            object=key,
            original=key,
            form=form,
            error=error,
            can_submit=status != KeyStatus.REVOKED,
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/keys/apikey/revoke_confirmation.html", context)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Alerts are raised and resolved by the background jobs; admins read them here."""

    list_display = ["kind", "key_link", "measured_value", "threshold", "opened_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter), "opened_at"]
    search_fields = ["key__name", "key__public_id"]
    list_select_related = ["key"]
    date_hierarchy = "opened_at"

    @admin.display(description="Key", ordering="key__name")
    def key_link(self, obj: Alert) -> str:
        return format_html(
            '<a href="{}">{}</a> <code class="key-id">{}</code>',
            reverse("admin:keys_apikey_change", args=[obj.key_id]),
            obj.key.name,
            obj.key.display_id,
        )
