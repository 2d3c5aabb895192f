"""Admin > API keys > Revoke a leaked key: find a key by its full value (POST only, never in a
URL) and revoke it, as ``apikey revoke --leaked`` does (the same selector and service, so the
audit entry reads the same: "revoked: reported leaked (…)")."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from audit.actors import Actor

from .. import selectors, services
from ..models import APIKey
from .forms import LeakedKeyForm


class LeakedKeyViews:
    """A mixin of ``APIKeyAdmin`` (which supplies the permission methods and page helpers)."""

    revoke_leaked_template = "admin/keys/apikey/revoke_leaked.html"

    @method_decorator(sensitive_post_parameters("full_key"))
    @method_decorator(sensitive_variables("form"))
    def revoke_leaked_view(self, request: HttpRequest) -> HttpResponse:
        allowed = self.has_view_permission(request) and self.has_revoke_permission(request)  # type: ignore[attr-defined]
        if not allowed:
            raise PermissionDenied
        form = LeakedKeyForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                key = selectors.key_by_full_key(form.cleaned_data["full_key"])
                services.key_revoke(
                    key=key,
                    actor=Actor.from_request(request),
                    reason=form.cleaned_data["reason"],
                    leaked=True,
                )
            except (selectors.KeyNotFound, services.KeyServiceError) as exc:
                form.add_error("full_key", str(exc))
            else:
                self.message_user(  # type: ignore[attr-defined]
                    request,
                    f"The API key “{key.name}” ({key.display_id}) was revoked as leaked. Every "
                    f"request with it is now rejected with 401 Unauthorized. {_next_step(key)}",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[key.pk]))
        context: dict[str, Any] = self._page_context(request, "Revoke a leaked key", form=form)  # type: ignore[attr-defined]
        return self._render(request, self.revoke_leaked_template, context)  # type: ignore[attr-defined]


def _next_step(key: APIKey) -> str:
    """What the admin does next: nothing when the leaked key was the old key of a rotation
    whose new key still works (the integration already has it), else hand out a new key."""
    new = key.replaced_by
    if new is not None and new.revocation_refusal() is None:
        return (
            f"It was the old key of a rotation: its new key {new.display_id} stays active and "
            "the integration keeps working with it; no new key is needed."
        )
    return "Generate a replacement with the same permissions and give it to the integration."
