"""The admin's middleware.

``StripKeysFromAdminURLs``: no full key in an admin URL. A query value holding one (a key pasted
into a search box, a link shared with one) is redirected to the same page with only the key's
public id, and the admin is offered the leaked-key revocation. The list pages' script already
strips the secret before the search leaves the browser (``static/keys/search_guard.js``); this
catches the rest (no script, a typed or shared URL), so the secret never stays in the address
bar, the history or the pages' links. The request line that brought it is redacted in the logs
(``crm_keys.redact``).

``KeyChangeWarningsMiddleware``: a change made in the admin that could not reach every process
is shown as a warning. A revocation, a scope or limit change or a rotation is announced to the
other processes after commit (``keys.api.changes``). When Redis did not confirm it, the admin
must not leave only a success message: this middleware (after ``MessageMiddleware``) adds the
problem as a warning to the page being rendered, or to the next one when the commit came after
it (the change form commits when its view returns).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from ..api import changes
from ..crypto import PREFIX, strip_secrets


class StripKeysFromAdminURLs:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # GET and HEAD only: redirecting a POST would lose what it carried.
        if (
            request.method in ("GET", "HEAD")
            and PREFIX in request.META.get("QUERY_STRING", "")
            and request.path_info.startswith("/admin/")
        ):
            query = request.GET.copy()
            changed = False
            for name, values in query.lists():
                cleaned = [strip_secrets(v, marker="") for v in values]
                if cleaned != values:
                    query.setlist(name, cleaned)
                    changed = True
            if changed:
                messages.warning(
                    request,
                    format_html(
                        "The address contained a full API key: only its public id was kept, so "
                        "the secret stays out of the address bar, the history and the logs. If "
                        'this key leaked, <a href="{}">revoke it by its value</a>.',
                        reverse("admin:keys_apikey_revoke_leaked"),
                    ),
                )
                return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        return self.get_response(request)


class KeyChangeWarningsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):  # the API changes no key
            return self.get_response(request)
        with changes.reporting_to(lambda problem: messages.warning(request, problem)):
            return self.get_response(request)


def change_message(done: str, success: str, not_announced: list[str]) -> tuple[str, int]:
    """The message after a change the view made itself, and its level: ``done`` and the
    ``success`` it promises, or, when the change could not be announced, what may lag (a
    warning, never the promise)."""
    if not_announced:
        return f"{done} {not_announced[0]}", messages.WARNING
    return done + success, messages.SUCCESS
