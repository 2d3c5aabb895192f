"""Keys out of the logs: a logging filter (runserver's access log and every console line) and
a gunicorn logger class (its access and error logs), both cutting ``icrm_<public id>_<secret>``
back to ``icrm_<public id>…``, whether the key is written plainly or percent-encoded (once,
twice, any character: ``keys.crypto.strip_secrets``).

A correct integration never puts a key in a URL, and the admin strips one from its URLs (a
pasted full key is redirected to its public id), but the request line that brought it is
logged before any view runs: this is the last line of defence.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from keys.crypto import strip_secrets

_FORMATTER = logging.Formatter()


def _clean(value: Any) -> Any:
    return strip_secrets(value) if isinstance(value, str) else value


class RedactKeysFilter(logging.Filter):
    """The whole line: the message with its arguments (whatever their type), the traceback and
    the stack, each formatted here and redacted, so no formatter adds a key back."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: clean what can be cleaned, let logging report it
            record.msg = _clean(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(_clean(a) for a in record.args)
        else:
            record.msg, record.args = strip_secrets(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        record.exc_text = _clean(record.exc_text)
        record.stack_info = _clean(record.stack_info)
        return True


class GunicornLogger(Logger):
    """gunicorn's logger with every access-log atom (request line, path, query, referer…)
    redacted, and the filter on its error and access loggers (an unparsable request line is
    logged whole by the error log). ``gunicorn.conf.py`` selects it."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        for logger in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactKeysFilter) for f in logger.filters):
                logger.addFilter(RedactKeysFilter())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        return {k: _clean(v) for k, v in super().atoms(resp, req, environ, request_time).items()}


def redact(text: str) -> str:
    """``text`` with every key cut back to ``icrm_<public id>…``, plain or percent-encoded."""
    return strip_secrets(text)
