"""The admin's middleware.

``StripKeysFromAdminURLs``: no full key in an admin URL. A query value or name or the path
holding one, plainly or percent-encoded (a key pasted into a search box, a link shared with
one), is redirected to the same page with only the key's public id, and the admin is offered the leaked-key revocation. The list pages' script already
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
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.encoding import iri_to_uri
from django.utils.html import format_html

from ..api import changes
from ..crypto import holds_secret, strip_secrets


class StripKeysFromAdminURLs:
    """Every page outside ``/api/`` (the API refuses a key in its URL with a 401 instead: a
    redirect would drop a write's body). A key is found written plainly or percent-encoded
    (``icrm%5F…``, twice over, any character), in a query value or name or in the path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # GET and HEAD only: redirecting a POST would lose what it carried.
        if request.method in ("GET", "HEAD") and not request.path_info.startswith("/api/"):
            raw_query = request.META.get("QUERY_STRING", "")
            if holds_secret(request.path) or holds_secret(raw_query):
                return self._redirect(request)
        return self.get_response(request)

    def _redirect(self, request: HttpRequest) -> HttpResponse:
        query = QueryDict(mutable=True)
        for name, values in request.GET.lists():
            query.setlist(
                strip_secrets(name, marker=""), [strip_secrets(v, marker="") for v in values]
            )
        messages.warning(
            request,
            format_html(
                "The address contained a full API key: only its public id was kept, so "
                "the secret stays out of the address bar, the history and the logs. If "
                'this key leaked, <a href="{}">revoke it by its value</a>.',
                reverse("admin:keys_apikey_revoke_leaked"),
            ),
        )
        path = iri_to_uri(strip_secrets(request.path, marker=""))
        return HttpResponseRedirect(f"{path}?{query.urlencode()}" if query else path)


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
