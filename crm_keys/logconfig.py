"""The logging configuration (``settings.LOGGING``) and its own filter: one line per event,
keys cut out of every line (``crm_keys.redact``). No Django import: settings import it."""

from __future__ import annotations

import logging
from typing import Any


def logging_settings(*, level: str) -> dict[str, Any]:
    """``LOGGING``, the root logger at ``level``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # A key that reaches a log line (a request line with one in its URL) is cut back to its
        # public id: runserver's access log and every console line (gunicorn: gunicorn.conf.py).
        "filters": {
            "redact_keys": {"()": "crm_keys.redact.RedactKeysFilter"},
            "one_line_warning": {"()": "crm_keys.logconfig.OneLineWarning"},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "django.server": {
                "()": "django.utils.log.ServerFormatter",
                "format": "[{server_time}] {message}",
                "style": "{",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["redact_keys"],
            },
            "django.server": {
                "class": "logging.StreamHandler",
                "formatter": "django.server",
                "filters": ["redact_keys"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # One handler for Django's messages: its default configuration adds a second console
            # handler in DEBUG, which printed every warning (and its traceback) twice.
            "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # 5xx only, with their traceback. A 4xx (an expected 403, a 404, an API 401) is one
            # line in the access log (runserver's, or gunicorn's --access-logfile), not a
            # warning with a traceback besides it.
            "django.request": {"level": "ERROR"},
            # A bad Host header (scanners send them all day): one WARNING line, no traceback.
            "django.security.DisallowedHost": {"filters": ["one_line_warning"]},
            # runserver's access log: one line per request.
            "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
            # django-axes: failed logins and lockouts (warnings) are worth a line; its four INFO
            # lines per successful login ("reset 0 attempts"...) are not.
            "axes": {"level": "WARNING"},
            "django.db.backends": {"level": "INFO"},
        },
    }


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
