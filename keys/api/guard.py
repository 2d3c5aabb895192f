"""Requests under /api/ refused before URL resolution or any view, each with a JSON answer
that says what is wrong (Django would answer a 404 that does not say why, or a 400 page that
is HTML in debug):

- a key in the path (``/api/v1/contacts/icrm_…/``, percent-encoded or not): 401, as a key in
  the query string is (the access log redacts it: ``crm_keys.redact``);
- a body sent without Content-Length (``Transfer-Encoding: chunked``): 411, unread. Django reads
  a body only up to its Content-Length, so a chunked one reached the view empty (a PATCH "did"
  nothing behind a 200) and runserver read its leftover chunks as another request. The refusal
  has no Content-Length of its own, so runserver closes the connection after it (Django's
  ``ServerHandler`` sends ``Connection: close``); gunicorn's sync workers always do;
- a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` by its Content-Length: 413, unread;
- a body cut short of its Content-Length (the client stopped sending, or the connection
  dropped): 400. Django reads what arrived without complaint, and a prefix that happens to be
  valid JSON was applied as if whole;
- more query parameters than ``DATA_UPLOAD_MAX_NUMBER_FIELDS``: 400.

Cost on a normal request: one regular-expression search of the path and a header read.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, JsonResponse

from .. import crypto
from .authentication import MSG_IN_URL

MSG_TOO_MANY_PARAMETERS = (
    "Too many query parameters: at most {limit} are read. The routes and their parameters are "
    "listed at /api/docs/."
)
MSG_LENGTH_REQUIRED = (
    "Send the request body with a Content-Length header: a body without one (Transfer-Encoding: "
    "chunked) is not read, and nothing was changed."
)
MSG_CUT_SHORT = (
    "The request body was cut short: {got} of the {length} bytes its Content-Length announced "
    "arrived. Nothing was changed; send the whole body again."
)
MSG_TOO_LARGE = (
    "The request body is too large: at most {size} bytes ({mb:g} MB). No record of this API "
    "needs more."
)


def refusal(request: HttpRequest) -> JsonResponse | None:
    path = request.path_info
    if crypto.hides_key(path, decodings=1):  # the server decoded it once already
        response = JsonResponse({"detail": MSG_IN_URL}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if "HTTP_TRANSFER_ENCODING" in request.META:
        return JsonResponse({"detail": MSG_LENGTH_REQUIRED}, status=411)
    too_large = body_too_large(request) or body_cut_short(request)
    if too_large is not None:
        return too_large
    try:
        request.GET  # noqa: B018 -- parsed here, where a refusal can still be JSON
    except TooManyFieldsSent as exc:
        return refusal_of_unreadable_request(exc)
    return None


def _content_length(request: HttpRequest) -> int:
    """The announced body length; 0 when absent or malformed (Django refuses a malformed
    Content-Length itself)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def body_too_large(request: HttpRequest) -> JsonResponse | None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and _content_length(request) > limit:
        return _too_large()
    return None


def body_cut_short(request: HttpRequest) -> JsonResponse | None:
    """Read the body (Django keeps it for the parsers; at most the upload limit, checked
    above) and refuse it when fewer bytes arrived than its Content-Length announced."""
    length = _content_length(request)
    if length <= 0:
        return None
    try:
        got = len(request.body)
    except Exception:  # unreadable: Django and DRF refuse it in their own words
        return None
    if got < length:
        return JsonResponse({"detail": MSG_CUT_SHORT.format(got=got, length=length)}, status=400)
    return None


def _too_large() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return JsonResponse(
        {"detail": MSG_TOO_LARGE.format(size=limit, mb=round(limit / 1024 / 1024, 1))},
        status=413,
    )


def refusal_of_unreadable_request(exception: Exception | None) -> JsonResponse | None:
    """The JSON answer to what Django refuses while reading a request (its handler400 gets
    these when they escape a view); None for anything else."""
    if isinstance(exception, RequestDataTooBig):
        return _too_large()
    if isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return JsonResponse({"detail": MSG_TOO_MANY_PARAMETERS.format(limit=limit)}, status=400)
    return None
