"""The API's JSON body parser: DRF's, with a clear 400 for the bodies Python's JSON decoder
cannot take (nested so deep that decoding exhausts the recursion limit: a 500 before) and
plain words for a body that is not UTF-8, and a 415 for a body declared in another charset
(JSON is UTF-8, RFC 8259; DRF decoded a ``charset=latin-1`` or ``utf-16`` body as declared)."""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType

MSG_TOO_DEEP = (
    "The request body is nested too deeply to read (arrays or objects within each other "
    "hundreds of levels deep); no field of this API takes more than one level."
)
MSG_CHARSET = (
    "JSON bodies are UTF-8 (RFC 8259): send 'Content-Type: application/json' or "
    "'application/json; charset=utf-8', with the body encoded as UTF-8."
)
MSG_BOM = "The request body starts with a byte order mark (BOM): send UTF-8 JSON without one."
MSG_NOT_JSON = "The request body is not valid JSON: {what} (line {line}, column {column})."
MSG_NOT_JSON_PLAIN = "The request body is not valid JSON."
MSG_TOO_MANY_DIGITS = (
    "A number in the request body has more than 4300 digits; no field of this API takes one "
    "that long."
)
MSG_NOT_UTF8 = "The request body is not valid UTF-8 (at byte {at}); send JSON encoded as UTF-8."


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        charset = parse_header_parameters(media_type or "")[1].get("charset")
        if charset is not None and not _is_utf8(charset):
            raise UnsupportedMediaType(media_type, detail=MSG_CHARSET)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(MSG_TOO_DEEP) from None
        except ParseError as exc:
            # DRF's message is Python's ("JSON parse error - ... use sys.set_int_max_str_digits()
            # ..."): said here in plain words instead.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, UnicodeDecodeError):
                raise ParseError(MSG_NOT_UTF8.format(at=cause.start)) from None
            if isinstance(cause, json.JSONDecodeError):
                if cause.msg.startswith("Unexpected UTF-8 BOM"):
                    raise ParseError(MSG_BOM) from None
                raise ParseError(
                    MSG_NOT_JSON.format(what=cause.msg, line=cause.lineno, column=cause.colno)
                ) from None
            if isinstance(cause, ValueError) and "digits" in str(cause):
                raise ParseError(MSG_TOO_MANY_DIGITS) from None
            raise ParseError(MSG_NOT_JSON_PLAIN) from None


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset.strip().strip('"')).name == "utf-8"
    except LookupError:
        return False
