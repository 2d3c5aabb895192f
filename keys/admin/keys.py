"""Admin > API Keys: the key list and the key page. The extra pages (Generate, Rotate, usage
CSV) are ``views.KeyAdminViews``, Revoke ``revoke.KeyRevokeViews``, the leaked-key form
``leaked.LeakedKeyViews``; the list's columns and the page's read-only fields are
``columns``, their HTML ``display``.

Every change goes through ``keys.services`` with the admin user as the actor; the admin never
saves a key itself.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from crm_keys.adminguard import GuardedChangelistMixin

from .. import services
from ..crypto import public_id_from_ref
from ..models import Alert, APIKey
from ..usage import insights
from ..usage.stats import key_usage, requests_24h_by_key, unknown_key_requests
from .callers import CallerAdminViews, callers_context
from .columns import KeyColumns, KeyPageFields, key_with_actions
from .display import change_lines
from .filters import ExpiryFilter, OwnerFilter, StatusFilter, UsageFilter
from .forms import KeyChangeForm
from .leaked import LeakedKeyViews
from .revoke import KeyRevokeViews
from .views import KeyAdminViews


@admin.register(APIKey)
class APIKeyAdmin(
    KeyColumns,
    KeyPageFields,
    LeakedKeyViews,
    KeyRevokeViews,
    KeyAdminViews,
    CallerAdminViews,
    GuardedChangelistMixin,
    admin.ModelAdmin,
):
    form = KeyChangeForm
    change_list_template = "admin/keys/apikey/change_list.html"
    change_form_template = "admin/keys/apikey/change_form.html"

    list_display = [
        "name_column",
        "key_column",
        "created_column",
        "expires_column",
        "last_used_column",
        "status_column",
        "requests_24h_column",
    ]
    list_display_links = ["name_column"]
    list_filter = [OwnerFilter, StatusFilter, ExpiryFilter, UsageFilter]
    search_fields = ["name", "description", "public_id"]
    search_help_text = "Search by name, description or key (icrm_…)."
    ordering = ["-created_at", "-id"]
    list_per_page = 50
    actions = ["revoke_selected"]
    readonly_fields = [
        "status_display",
        "key_column",
        "created_by_display",
        "granted_by_display",
        "created_display",
        "expires_display",
        "last_used_display",
        "last_rejected_display",
        "rotation_display",
        "permissions_table",
    ]

    class Media:
        css = {"all": ("keys/admin.css",)}
        js = ("keys/search_guard.js",)

    def get_list_display(self, request: HttpRequest) -> Any:
        can_rotate, can_revoke = (
            self.has_rotate_permission(request),
            self.has_revoke_permission(request),
        )
        if not (can_rotate or can_revoke):
            return self.list_display
        key = key_with_actions(can_rotate=can_rotate, can_revoke=can_revoke)
        return [key if column == "key_column" else column for column in self.list_display]

    # Permissions ----------------------------------------------------------------------------

    def has_delete_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return False  # keys are revoked, never deleted: the audit trail must keep pointing at them

    def has_change_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        if obj is not None and obj.edit_refusal() is not None:
            return False  # e.g. a revoked key can never be used again: its page is read-only
        return super().has_change_permission(request, obj)

    def has_rotate_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.rotate_apikey")

    def has_revoke_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.revoke_apikey")

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            # A plain list of people: no add/change/delete-user links on a key's page.
            return db_field.formfield(**kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_form(
        self, request: HttpRequest, obj: APIKey | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        # The key page's form applies the privilege ceiling of the person at the keyboard.
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    # List -----------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        open_alerts = Alert.objects.needing_attention().filter(key=OuterRef("pk"))
        # Both keys of a rotation are badged: the old one by its replaced_by, the new one by
        # the key it replaces (one subquery, so the list stays one query per page).
        replaces = APIKey.objects.filter(replaced_by=OuterRef("pk")).values("public_id")[:1]
        return (
            super()
            .get_queryset(request)
            .select_related("replaced_by")
            .annotate(has_open_alert=Exists(open_alerts), replaces_public_id=Subquery(replaces))
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # Admins paste the key as shown everywhere else: icrm_<public id>…
        return super().get_search_results(request, queryset, public_id_from_ref(search_term))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # Seven columns and the filters need the width: the breadcrumbs lead everywhere else.
        context = {
            "title": "API keys",
            "can_revoke_leaked": self.has_revoke_permission(request),
            "is_nav_sidebar_enabled": False,
            # Failed attempts with keys that match no key: a brute-force or misconfiguration signal.
            "unknown_key_requests": unknown_key_requests(),
        }
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # One aggregate query for the page's keys, whatever the page size.
        page = list(changelist.result_list)
        counts = requests_24h_by_key([k.pk for k in page])
        for key in page:
            key.requests_24h = counts.get(key.pk, 0)
        return changelist

    # Key page -------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: APIKey | None = None) -> list[Any]:
        editable = obj is not None and self.has_change_permission(request, obj)
        now = timezone.now()
        return [
            (None, {"fields": ["name", "description", "owner"]}),
            (
                "Key",
                {
                    "fields": [
                        ("status_display", "key_column"),
                        ("created_display", "created_by_display"),
                        "granted_by_display",
                        ("expires_display", "last_used_display"),
                        *(["last_rejected_display"] if obj and obj.stopped_at(now) else []),
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
                    "fields": ["rate_limit_per_minute", "allowed_ips"],
                },
            ),
        ]

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
            # Each panel only with its own view permission: the audit log and the alert list
            # refuse these users, so the key page must not show them the same rows.
            can_audit = request.user.has_perm("audit.view_auditentry")
            can_see_alerts = request.user.has_perm(f"{self.opts.app_label}.view_alert")
            shipment = insights.pending(obj)  # what Redis holds and the tables do not yet
            callers = callers_context(
                request,
                obj,
                shipment,
                can_change=self.has_change_permission(request, obj),
                can_revoke=self.has_revoke_permission(request),
            )
            obj.scope_usage = callers["scope_usage"]  # type: ignore[attr-defined]
            adminform = context.get("adminform")
            if adminform is not None and "scopes" in adminform.form.fields:
                adminform.form.fields["scopes"].widget.usage = callers["scope_usage"]
            usage = key_usage(obj, pending=shipment)
            stopped = obj.stopped_at(now)
            context.update(
                {
                    **callers,
                    "usage": usage,
                    # After the key stopped working, every call is a 401: not "use".
                    "last_call_rejected": bool(
                        stopped and usage.last_used and usage.last_used > stopped
                    ),
                    "can_see_alerts": can_see_alerts,
                    "open_alerts": (
                        list(obj.alerts.filter(resolved_at__isnull=True)) if can_see_alerts else []
                    ),
                    "can_see_audit": can_audit,
                    # Edits show what changed; other entries their sentence.
                    "audit_entries": (
                        [
                            (
                                entry,
                                change_lines(entry.before, entry.after)
                                if entry.action in (AuditAction.EDITED, AuditAction.SCOPES_CHANGED)
                                else [],
                            )
                            for entry in AuditEntry.objects.filter(key_id=obj.pk)[:20]
                        ]
                        if can_audit
                        else []
                    ),
                    "audit_log_url": (
                        reverse("admin:audit_auditentry_changelist") + f"?key_id={obj.pk}"
                        if can_audit
                        else ""
                    ),
                    "can_rotate": self.has_rotate_permission(request, obj)
                    and obj.rotation_refusal(now) is None,
                    "can_revoke": self.has_revoke_permission(request, obj)
                    and obj.revocation_refusal(now) is None,
                    "key_status": status,
                    "key_in_grace": obj.in_grace_at(now),
                    # "Add" is the Generate page, with its own show-once flow.
                    "show_save_and_add_another": False,
                }
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        """History is the key's audit trail (generate, edit, rotate, revoke, alerts), which
        Django's LogEntry history never sees: the audit log, filtered to this key (it checks
        its own view permission)."""
        key = self.get_object(request, unquote(object_id))
        if key is None:
            raise Http404("No such API key.")
        url = reverse("admin:audit_auditentry_changelist") + f"?key_id={key.pk}"
        return HttpResponseRedirect(url)

    def save_model(self, request: HttpRequest, obj: APIKey, form: Any, change: bool) -> None:
        # The form validated the input in clean(); the service applies it, writes the audit
        # entries (scopes before/after) and locks the row.
        try:
            services.key_update(
                key=obj.pk, actor=Actor.from_request(request), data=form.service_changes()
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
