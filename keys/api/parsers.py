"""The API's JSON body parser: DRF's, with a clear 400 for the bodies Python's JSON decoder
cannot take (nested so deep that decoding exhausts the recursion limit: a 500 before) and
plain words for a body that is not UTF-8."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MSG_TOO_DEEP = (
    "The request body is nested too deeply to read (arrays or objects within each other "
    "hundreds of levels deep); no field of this API takes more than one level."
)
MSG_NOT_UTF8 = "The request body is not valid UTF-8 (at byte {at}); send JSON encoded as UTF-8."


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(MSG_TOO_DEEP) from None
        except ParseError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, UnicodeDecodeError):
                raise ParseError(MSG_NOT_UTF8.format(at=cause.start)) from None
            raise
