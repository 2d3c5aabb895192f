"""Settings for the test suite: production-like (DEBUG off), never reads a developer's .env.

Each test process gets its own SQLite file and filesystem-broker folders, so several suites
(or xdist workers) can run at once on one machine.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("API_KEY_PEPPER", "test-pepper")
os.environ["CRM_KEYS_READ_DOTENV"] = "0"
os.environ.setdefault("DJANGO_DEBUG", "0")

from .settings import *  # noqa: F403
from .settings import DATABASES, REDIS_URL, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

VAR_DIR.mkdir(parents=True, exist_ok=True)  # the test run's own folder goes inside it
_run_dir = Path(tempfile.mkdtemp(prefix=f"crm-keys-test-{os.getpid()}-", dir=VAR_DIR))
# Tests send many bad keys from 127.0.0.1; the brute-force tests lower this themselves.
# No background usage shipper: tests ship explicitly (the shipper's own test turns it on), so
# no thread writes into the test database behind a test's back.
# The key-change file of this test run: other suites on the machine have their own.
API_KEYS = {
    **API_KEYS,  # noqa: F405
    "AUTH_FAILURES_PER_MINUTE": 100_000,
    "USAGE_SHIP_INTERVAL": 0,
    "CHANGES_FILE": str(_run_dir / "key-changes"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(_run_dir / "test-db.sqlite3")}
if not REDIS_URL:  # the folders are made by KeysConfig.ready()
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_run_dir / "broker" / "out"),
        "data_folder_out": str(_run_dir / "broker" / "out"),
        "processed_folder": str(_run_dir / "broker" / "processed"),
        "control_folder": str(_run_dir / "broker" / "control"),
        "store_processed": False,
    }
CELERY_BEAT_SCHEDULE_FILENAME = str(_run_dir / "celerybeat-schedule")
AUDIT_HEAD_FILE = str(_run_dir / "audit-head.log")
if "API_KEY_COUNTERS_FILE" not in os.environ:  # this run's own rate-limit counters
    API_KEYS["COUNTERS_FILE"] = str(_run_dir / "rate-limits.sqlite3")
