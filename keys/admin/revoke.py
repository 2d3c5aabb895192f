"""The key admin's Revoke pages: one key (the key page's Revoke, "Revoke now" for the old key
of a rotation) and the bulk action, each with a confirmation page. A mixin of ``APIKeyAdmin``,
beside ``views.KeyAdminViews`` (which supplies ``_key_for``, ``_page_context``, ``_render``).

Revoking is permanent, so a second submission (double click, reload, a second tab) is not an
error: it lands where the first one did, saying when and by whom the key was revoked.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor

from .. import services
from ..api import changes
from ..models import APIKey
from ..usage import insights
from .forms import RevokeForm
from .middleware import change_message


class KeyRevokeViews:
    """Revoke one key, or the selected keys."""

    revoke_template = "admin/keys/apikey/revoke_confirmation.html"
    revoke_selected_template = "admin/keys/apikey/revoke_selected_confirmation.html"

    _key_for: Any
    _page_context: Any
    _render: Any
    message_user: Any

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._key_for(request, object_id, self.has_revoke_permission)  # type: ignore[attr-defined]
        error = ""
        if request.method == "POST" and key.revocation_refusal() is not None:
            # A second submission (double click, reload, a second tab) ends where the first
            # one did: on the key page, saying it is revoked, when and by whom.
            return self._already_revoked(request, key)
        form = RevokeForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            not_announced: list[str] = []  # said instead of the success (keys.api.changes)
            actor, reason = Actor.from_request(request), form.cleaned_data["reason"]
            try:
                with changes.reporting_to(not_announced.append):
                    services.key_revoke(key=key, actor=actor, reason=reason)
            except services.KeyServiceError as exc:
                key.refresh_from_db()
                if key.revocation_refusal() is not None:  # the other submission won the lock
                    return self._already_revoked(request, key)
                error = str(exc)
            else:
                done = f"The API key “{key.name}” ({key.display_id}) was revoked."
                refused = " Every request with it is now rejected with 401 Unauthorized."
                self.message_user(request, *change_message(done, refused, not_announced))  # type: ignore[attr-defined]
                return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[key.pk]))
        refusal = key.revocation_refusal()
        context = self._page_context(
            request,
            "Revoke API key",
            object=key,
            original=key,
            form=form,
            error=error or refusal or "",
            can_submit=refusal is None,
            cutover=insights.cutover(key) if key.in_grace else None,  # who still calls it
        )
        return self._render(request, self.revoke_template, context)

    def _already_revoked(self, request: HttpRequest, key: APIKey) -> HttpResponse:
        self.message_user(  # type: ignore[attr-defined]
            request,
            f"The API key “{key.name}” ({key.display_id}) is revoked: it was revoked "
            f"{key.revoked_text()}. Every request with it is rejected with 401 Unauthorized.",
            messages.INFO,
        )
        return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[key.pk]))

    @admin.action(permissions=["revoke"], description="Revoke selected keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        now = timezone.now()
        keys = list(queryset)
        revocable = [k for k in keys if k.revocation_refusal(now) is None]
        form = RevokeForm(request.POST if request.POST.get("post") == "yes" else None)
        if request.POST.get("post") == "yes" and (form.is_valid() or not revocable):
            actor, reason = Actor.from_request(request), form.cleaned_data.get("reason", "")
            done = 0
            not_announced: list[str] = []
            skipped = [k for k in keys if k not in revocable]
            for key in revocable:
                try:
                    with changes.reporting_to(not_announced.append):
                        services.key_revoke(key=key, actor=actor, reason=reason)
                    done += 1
                except services.KeyServiceError as exc:
                    key.refresh_from_db()
                    if key.revocation_refusal() is not None:  # revoked meanwhile (double submit)
                        skipped.append(key)
                    else:
                        self.message_user(request, f"{key}: {exc}", messages.WARNING)  # type: ignore[attr-defined]
            if done:
                revoked = f"Revoked {done} API key{'s' if done != 1 else ''}."
                refused = " Requests with them are now rejected with 401 Unauthorized."
                self.message_user(request, *change_message(revoked, refused, not_announced))  # type: ignore[attr-defined]
            for key in skipped:
                self.message_user(  # type: ignore[attr-defined]
                    request,
                    f"“{key.name}” ({key.display_id}) was already revoked {key.revoked_text()}.",
                    messages.INFO,
                )
            return None
        context = self._page_context(
            request,
            "Revoke API keys",
            revocable=revocable,
            already_revoked=[k for k in keys if k not in revocable],
            queryset=keys,
            form=form,
            action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
        )
        return self._render(request, self.revoke_selected_template, context)
