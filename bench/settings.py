"""Settings for the benchmark: the deployed settings plus djangorestframework-api-key (the
reference we compare against) and a URLconf that also serves the same CRM viewset without
authentication and behind ``HasAPIKey``.

The database is the benchmark's own: ``var/bench/bench.sqlite3`` by default, or the PostgreSQL
database ``crm_keys_bench`` on the server named by DATABASE_URL (BENCH_BACKEND=postgres). Redis,
when REDIS_URL is set, is always database 14 (the only one the benchmark flushes). BENCH_DB_NAME and
BENCH_REDIS_DB move them, so two checkouts on one machine can run the benchmark at once.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# Overridable so benchmarks of several checkouts on one machine do not drop each other's data.
BENCH_DB_NAME = os.environ.get("BENCH_DB_NAME", "crm_keys_bench")
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))

os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
os.environ.setdefault("API_KEY_PEPPER", "bench-pepper")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("CRM_KEYS_VAR_DIR", str(ROOT / "var" / "bench"))
# The benchmark decides its own database and Redis; a developer's .env must not leak in.
os.environ["CRM_KEYS_READ_DOTENV"] = "0"

BENCH_BACKEND = os.environ.get("BENCH_BACKEND", "sqlite")


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


if BENCH_BACKEND == "postgres":
    if not os.environ.get("DATABASE_URL"):
        raise RuntimeError("BENCH_BACKEND=postgres needs DATABASE_URL")
    # The server's own database is kept to drop and create the benchmark database from.
    os.environ.setdefault("BENCH_MAINTENANCE_DATABASE_URL", os.environ["DATABASE_URL"])
    os.environ["DATABASE_URL"] = _with_path(os.environ["DATABASE_URL"], f"/{BENCH_DB_NAME}")
    if os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = _with_path(os.environ["REDIS_URL"], f"/{BENCH_REDIS_DB}")
else:
    # The embedded default: SQLite and the in-process usage buffer, no server at all.
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)

from crm_keys.settings import *  # noqa: E402, F403
from crm_keys.settings import API_KEYS, DATABASES, INSTALLED_APPS, LOGGING, VAR_DIR  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework_api_key"]
ROOT_URLCONF = "bench.urls"

if BENCH_BACKEND != "postgres":
    DATABASES["default"]["NAME"] = str(VAR_DIR / "bench.sqlite3")
# What-if runs (`run.py --conn-max-age N`); by default the shipped connection settings.
if os.environ.get("BENCH_CONN_MAX_AGE"):
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["BENCH_CONN_MAX_AGE"])
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Rejected-request rounds send thousands of bad keys from 127.0.0.1; the brute-force gate
# would turn them into 429s, which is not the path being measured. Its counter still runs.
API_KEYS = {**API_KEYS, "AUTH_FAILURES_PER_MINUTE": 1_000_000_000}

# django.request logs every 4xx as a warning; writing thousands of lines to the terminal would
# measure the terminal. Both rejected variants (B and C) skip it alike.
LOGGING = {
    **LOGGING,
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {**LOGGING["loggers"], "django.request": {"level": "ERROR"}},
}
