"""Log filters that keep the log to one line per event."""

from __future__ import annotations

import logging


class OneLineWarning(logging.Filter):
    """A request refused for a bad ``Host`` header (Django's ``DisallowedHost``) as one WARNING
    line: Django logs it at ERROR with the whole traceback, for something any scanner of the
    internet sends and the client already got its 400 for."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        record.stack_info = None
        record.msg, record.args = " ".join(record.getMessage()[:500].split()), ()
        return True
