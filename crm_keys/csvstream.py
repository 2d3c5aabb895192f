"""CSV as a stream of lines, for StreamingHttpResponse (Django's "streaming large CSV files")."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

logger = logging.getLogger(__name__)

# The last line of an export the database failed in the middle of (see ``csv_lines``).
INTERRUPTED = "#ERROR: export interrupted by a server error; this file is incomplete.\r\n"


class ExportInterrupted(Exception):
    """Raised to the WSGI server after the INTERRUPTED line, so that it closes the connection
    without the final chunk of the chunked response: HTTP clients report a truncated body."""


class _Echo:
    """A file-like object whose write() returns the line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header and the rows as CSV lines. The status line has gone by the time a row
    fails (the database went away, a row it cannot read), so a failure cannot become an error
    status: the file then ends with the INTERRUPTED line and the response is cut off without
    its final chunk, two signs a client can check instead of taking a truncated file as whole."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    try:
        for row in rows:
            yield writer.writerow(row)
    except Exception as exc:
        logger.exception("CSV export interrupted")
        yield INTERRUPTED
        raise ExportInterrupted(type(exc).__name__) from exc


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: one starting with = + - @ (CSV injection) gets a
    leading ' ; None is empty."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value
