"""Admin > Alerts and Admin > Alert recipients.

Alerts are raised and resolved by the background jobs; here admins read them (the sentence each
was raised with, its figures with units, its key) and handle them: acknowledge, snooze, resolve,
one at a time on the alert's page or in bulk from the list, each through ``alerts.services``
(audited) and with the ``handle_alert`` permission. Recipients are added and removed through
the same services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from audit.actors import Actor
from audit.admin import ReadOnlyAdminMixin
from crm_keys.adminguard import GuardedChangelistMixin

from ..alerts import services
from ..conf import key_settings
from ..models import Alert, AlertRecipient
from .display import when_html


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("open", "Needs attention"),
            ("acknowledged", "Acknowledged"),
            ("snoozed", "Snoozed"),
            ("resolved", "Resolved"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        value = self.value()
        if value == "open":
            return queryset.needing_attention(now)
        if value == "acknowledged":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=False)
        if value == "snoozed":
            return queryset.filter(resolved_at__isnull=True, snoozed_until__gt=now)
        if value == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(GuardedChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["kind_column", "key_link", "what_happened", "figures", "state", "opened"]
    list_display_links = ["kind_column"]
    list_filter = [StateFilter, "kind", "opened_at"]
    search_fields = ["key__name", "key__public_id", "message"]
    search_help_text = "Search by key name or public id (icrm_…), or by what happened."
    list_select_related = ["key"]
    date_hierarchy = "opened_at"
    actions = ["acknowledge_selected", "resolve_selected"]
    change_form_template = "admin/keys/alert/change_form.html"
    fieldsets = [(None, {"fields": ["key_link", "what_happened", "figures", "state", "timeline"]})]
    readonly_fields = ["key_link", "what_happened", "figures", "state", "timeline"]

    class Media:
        css = {"all": ("keys/admin.css",)}
        js = ("keys/search_guard.js",)

    def has_handle_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.handle_alert")

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                f"<path:object_id>/{action}/",
                wrap(require_POST(self.handle_view)),
                {"action": action},
                name=f"keys_alert_{action}",
            )
            for action in ("acknowledge", "snooze", "resolve")
        ] + super().get_urls()

    # What happened --------------------------------------------------------------------------

    @admin.display(description="Alert", ordering="kind")
    def kind_column(self, obj: Alert) -> str:
        return format_html(
            '<span class="key-badge key-badge--alert">{}</span>', obj.get_kind_display()
        )

    @admin.display(description="Key", ordering="key__name")
    def key_link(self, obj: Alert) -> str:
        return format_html(
            '<a href="{}"><span class="key-name" title="{}">{}</span></a> '
            '<code class="key-id">{}</code>',
            reverse("admin:keys_apikey_change", args=[obj.key_id]),
            obj.key.name,
            obj.key.name,
            obj.key.display_id,
        )

    @admin.display(description="What happened")
    def what_happened(self, obj: Alert) -> str:
        return obj.text

    @admin.display(description="Measured / threshold")
    def figures(self, obj: Alert) -> str:
        if not obj.has_figures:
            return "—"  # e.g. "owner deactivated": about who answers for the key, not traffic
        return format_html(
            'Measured {}<br><span class="key-hint">Threshold {}</span>',
            obj.measured_text(),
            obj.threshold_text(),
        )

    @admin.display(description="State")
    def state(self, obj: Alert) -> str:
        css = "resolved" if obj.resolved_at else "open"
        return format_html(
            '<span class="alert-state alert-state--{}">{}</span>', css, obj.state_text()
        )

    @admin.display(description="Opened", ordering="opened_at")
    def opened(self, obj: Alert) -> str:
        return when_html(obj.opened_at)

    @admin.display(description="Timeline")
    def timeline(self, obj: Alert) -> str:
        rows = [("Opened", obj.opened_at, "")]
        if obj.notified_at:
            rows.append(("E-mailed", obj.notified_at, ""))
        if obj.acknowledged_at:
            rows.append(("Acknowledged", obj.acknowledged_at, f"by {obj.acknowledged_by}"))
        if obj.snoozed_until:
            rows.append(("Snoozed until", obj.snoozed_until, ""))
        if obj.resolved_at:
            rows.append(("Resolved", obj.resolved_at, obj.resolution))
        items = format_html_join(
            "",
            "<li><strong>{}</strong> {} {}</li>",
            ((label, when_html(moment, inline=True), note) for label, moment, note in rows),
        )
        return format_html('<ul class="alert-timeline">{}</ul>', items)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # Six columns and the filters need the width: the breadcrumbs lead everywhere else.
        context = {"title": "Alerts", "is_nav_sidebar_enabled": False}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        context = {
            "can_handle": obj is not None
            and obj.handling_refusal() is None
            and self.has_handle_permission(request, obj),
            "can_acknowledge": obj is not None and obj.acknowledge_refusal() is None,
            "snooze_choices": [(1, "1 hour"), (24, "24 hours"), (168, "7 days")],
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    # Handling -------------------------------------------------------------------------------

    def handle_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """POST <id>/acknowledge|snooze|resolve/: act through the service, then back to the
        alert's page with a message (redirect after POST)."""
        if not self.has_handle_permission(request):
            raise PermissionDenied
        alert = self.get_object(request, unquote(object_id))
        if alert is None:
            raise Http404("No such alert.")
        actor = Actor.from_request(request)
        try:
            if action == "acknowledge":
                services.alert_acknowledge(alert=alert, actor=actor)
                done = "acknowledged"
            elif action == "snooze":
                hours = request.POST.get("hours", "")
                if not hours.isascii() or not hours.isdigit():
                    raise services.AlertServiceError(services.SNOOZE_MESSAGE)
                alert = services.alert_snooze(alert=alert, hours=int(hours), actor=actor)
                done = "snoozed"
            else:
                services.alert_resolve(alert=alert, actor=actor, note=request.POST.get("note", ""))
                done = "resolved"
        except services.AlertServiceError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"{alert.get_kind_display()} on “{alert.key.name}” {done}.")
        return HttpResponseRedirect(reverse("admin:keys_alert_change", args=[alert.pk]))

    def _bulk(
        self, request: HttpRequest, queryset: QuerySet, act: Any, done: str, skip: str = ""
    ) -> None:
        """Act on the open alerts of ``queryset`` (those not acknowledged yet when ``skip``
        says so); the message says how many, and why the others of the selection were left."""
        actor = Actor.from_request(request)
        selected = queryset.count()
        pending = queryset.filter(resolved_at__isnull=True)
        if skip:
            pending = pending.filter(acknowledged_at__isnull=True)
        count = 0
        for alert in pending:
            try:
                act(alert=alert, actor=actor)
                count += 1
            except services.AlertServiceError:
                continue  # resolved meanwhile
        message = f"{count} alert{'s' if count != 1 else ''} {done}."
        left = selected - count
        if left:
            reason = f"already resolved{' or ' + skip if skip else ''}"
            message += f" {left} of the selected {'were' if left != 1 else 'was'} {reason}."
        self.message_user(request, message)

    @admin.action(permissions=["handle"], description="Acknowledge selected alerts")
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(
            request, queryset, services.alert_acknowledge, "acknowledged", "already acknowledged"
        )

    @admin.action(permissions=["handle"], description="Resolve selected alerts")
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, services.alert_resolve, "resolved")


@admin.register(AlertRecipient)
class AlertRecipientAdmin(admin.ModelAdmin):
    """Who gets alert and reminder e-mails. Added and removed through ``alerts.services``
    (audited); an address is never edited in place (remove it, add the new one)."""

    list_display = ["email", "added_by", "added"]
    fields = ["email"]
    change_list_template = "admin/keys/alertrecipient/change_list.html"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Added", ordering="added_at")
    def added(self, obj: AlertRecipient) -> str:
        return when_html(obj.added_at)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)

        class RecipientForm(form):  # type: ignore[misc, valid-type]
            def clean_email(self) -> str:
                email = self.cleaned_data["email"].strip().lower()
                if AlertRecipient.objects.filter(email=email).exists():
                    raise ValidationError(f"{email} is already a recipient.")
                return email

            def validate_unique(self) -> None:
                pass  # clean_email says it in words

        return RecipientForm

    def save_model(
        self, request: HttpRequest, obj: AlertRecipient, form: Any, change: bool
    ) -> None:
        created = services.recipient_add(email=obj.email, actor=Actor.from_request(request))
        obj.pk = created.pk  # the admin's redirect and message need it

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def delete_model(self, request: HttpRequest, obj: AlertRecipient) -> None:
        services.recipient_remove(recipient=obj, actor=Actor.from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for recipient in queryset:
            services.recipient_remove(recipient=recipient, actor=Actor.from_request(request))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        context = {
            "title": "Alert recipients",
            "default_recipients": list(key_settings.ALERT_RECIPIENTS or []),
            "stored": AlertRecipient.objects.exists(),
        }
        return super().changelist_view(request, {**context, **(extra_context or {})})
