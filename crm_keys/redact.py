"""Keys out of the logs: a logging filter (runserver's access log and every console line) and
a gunicorn logger class (its access and error logs), both cutting ``icrm_<public id>_<secret>`` back to
``icrm_<public id>…``, also where percent-escapes hide the key (``icrm%5F…``).

A correct integration never puts a key in a URL, and the admin strips one from its URLs (a
pasted full key is redirected to its public id), but the request line that brought it is
logged before any view runs: this is the last line of defence.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, unquote

from gunicorn.glogging import Logger

from keys.crypto import PREFIX, hides_key, strip_secrets

# A run of URL characters in which percent-escapes may hide a key (icrm%5F…, every byte
# escaped, escaped twice as %25XX).
_URL_RUN = re.compile(r"(?:[0-9A-Za-z_]|%[0-9A-Fa-f]{2})+")  # linear: runs never overlap


def redact(text: str) -> str:
    """``text`` with every key cut back to ``icrm_<public id>…``, also where percent-escapes
    hide it (a run that decodes to one is logged decoded and redacted, re-escaped)."""
    if "%" in text:
        text = _URL_RUN.sub(_redact_escaped, text)
    return strip_secrets(text) if PREFIX in text else text


def _redact_escaped(match: re.Match[str]) -> str:
    run = match.group(0)
    if "%" not in run or not hides_key(run):
        return run
    for _ in range(3):
        run = unquote(run)
    return quote(strip_secrets(run, marker="..."), safe="/_.")


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


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

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # The error log too: "Error handling request <uri>" names the request's URL.
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactKeysFilter) for f in log.filters):
                log.addFilter(RedactKeysFilter())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        return {k: _clean(v) for k, v in super().atoms(resp, req, environ, request_time).items()}
