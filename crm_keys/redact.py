"""Keys out of the logs: a logging filter (runserver's access log and every console line) and
a gunicorn logger class (its access log), both cutting ``icrm_<public id>_<secret>`` back to
``icrm_<public id>…``.

A correct integration never puts a key in a URL, and the admin strips one from its URLs (a
pasted full key is redirected to its public id), but the request line that brought it is
logged before any view runs: this is the last line of defence.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from keys.crypto import PREFIX, strip_secrets


def _clean(value: Any) -> Any:
    return strip_secrets(value) if isinstance(value, str) and PREFIX in value else value


class RedactKeysFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


class GunicornLogger(Logger):
    """gunicorn's logger with the access log's request line, path and query redacted
    (``gunicorn.conf.py`` selects it)."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        return {k: _clean(v) for k, v in super().atoms(resp, req, environ, request_time).items()}
