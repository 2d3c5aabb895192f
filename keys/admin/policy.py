"""Admin > Key policy: the organisation's rules for every key (one page, no list).

Viewing needs ``keys.view_keypolicy``, changing it ``keys.change_keypolicy``. The form is
validated by the model's own rules; the change is made (and audited) by
``services.policy_update``. The page lists the active keys that break the policy.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction
from crm.modules import ACTION_LABELS, ACTIONS

from .. import selectors, services
from ..models import KeyPolicy


class KeyPolicyForm(forms.ModelForm):
    ip_allowlist_actions = forms.MultipleChoiceField(
        label="Actions that require an IP allowlist",
        choices=[(a, ACTION_LABELS[a]) for a in ACTIONS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=KeyPolicy._meta.get_field("ip_allowlist_actions").help_text,
    )

    class Meta:
        model = KeyPolicy
        fields = list(services.POLICY_FIELDS)


@admin.register(KeyPolicy)
class KeyPolicyAdmin(admin.ModelAdmin):
    form = KeyPolicyForm
    change_form_template = "admin/keys/keypolicy/change_form.html"
    fieldsets = [
        ("Lifetime", {"fields": ["max_lifetime_days", "default_expiry", "rotation_days"]}),
        ("Every new key", {"fields": ["require_description", "ip_allowlist_actions"]}),
        ("Last change", {"fields": ["last_change"]}),
    ]
    readonly_fields = ["last_change"]

    class Media:
        css = {"all": ("keys/admin.css",)}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one policy, created by the migration

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        # The row a migration made, or the defaults if it is missing (saving creates it).
        return KeyPolicy.current() if object_id == str(KeyPolicy.SINGLETON_PK) else None

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # No list: the one policy's page.
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # Django's 403
        return HttpResponseRedirect(
            reverse("admin:keys_keypolicy_change", args=[KeyPolicy.SINGLETON_PK])
        )

    @admin.display(description="Changed")
    def last_change(self, obj: KeyPolicy) -> str:
        if obj.updated_at is None:
            return "Never changed: the defaults."
        when = timezone.localtime(obj.updated_at)
        return f"{when:%Y-%m-%d %H:%M %Z} by {obj.updated_by_label or '—'}"

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: KeyPolicy | None = None,
    ) -> HttpResponse:
        can_audit = request.user.has_perm("audit.view_auditentry")
        context.update(
            {
                "title": "Key policy",
                "subtitle": None,
                "breaches": selectors.policy_breaches(KeyPolicy.current()),
                "audit_url": reverse("admin:audit_auditentry_changelist")
                + f"?action__exact={AuditAction.POLICY_CHANGED}"
                if can_audit
                else "",
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
            }
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: KeyPolicy, form: Any, change: bool) -> None:
        # The form validated the values (the model's rules); the service saves and audits.
        data = {f: form.cleaned_data[f] for f in services.POLICY_FIELDS if f in form.cleaned_data}
        try:
            services.policy_update(data=data, actor=Actor.from_request(request))
        except services.KeyServiceError as exc:
            request._policy_error = str(exc)  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # the audit log records the change (with before/after)

    def response_change(self, request: HttpRequest, obj: KeyPolicy) -> HttpResponse:
        error = getattr(request, "_policy_error", None)
        if error:
            self.message_user(request, error, messages.ERROR)
        else:
            self.message_user(
                request,
                "The key policy was changed. It applies to keys generated, edited or rotated "
                "from now on; keys that break it are listed below.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(request.path)
