"""Settings for crm-keys, read from the environment (and an optional `.env` file).

With no configuration at all (plus DJANGO_DEBUG=1 or a SECRET_KEY) it runs on SQLite under
var/ and needs no server. Production sets DATABASE_URL (PostgreSQL) and REDIS_URL.
Every setting is listed in the README.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from crm_keys.logconfig import logging_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CRM_KEYS_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
# The .env that `make run` writes (DEBUG on, throwaway secrets) is read only when asked for:
# manage.py and the Makefile ask (CRM_KEYS_READ_DOTENV=1), gunicorn and Celery do not, so a copy
# left on a production machine cannot turn DEBUG on where requests are served. `check --deploy`
# warns when one was read. Existing variables win over the file.
DOTENV_FILE = Path(env.str("CRM_KEYS_DOTENV", default=str(BASE_DIR / ".env")))
DOTENV_READ = env.bool("CRM_KEYS_READ_DOTENV", default=False) and DOTENV_FILE.exists()
if DOTENV_READ:
    environ.Env.read_env(DOTENV_FILE, overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment; for development, `make run` "
            "writes a local .env, which manage.py reads (other processes with "
            "CRM_KEYS_READ_DOTENV=1), or set DJANGO_DEBUG=1 for a throwaway dev key."
        )
    SECRET_KEY = "django-insecure-dev-only-not-for-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "audit",
    "keys",
    "crm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves admin and Swagger UI static files in production without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "keys.api.middleware.APIResponseMiddleware",
    # Django's own, minus the work for API requests, which use no session, user or messages.
    "crm_keys.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "crm_keys.middleware.AuthenticationMiddleware",
    # Admin query parameters with NUL or of absurd length: a clear 400 before any view.
    "crm_keys.adminguard.AdminQueryGuardMiddleware",
    "crm_keys.middleware.MessageMiddleware",
    # A full key in an admin URL is redirected to its public id (before any view runs).
    "keys.admin.middleware.StripKeysFromAdminURLs",
    "keys.admin.middleware.KeyChangeWarningsMiddleware",  # a key change not announced: a warning
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a locked-out admin login into the lockout page (audit/logins.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm_keys.urls"
WSGI_APPLICATION = "crm_keys.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Widgets render through the template settings (the permission matrix's template is in the app).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# --- Database -------------------------------------------------------------------------------
# SQLite under var/ by default; DATABASE_URL (postgres://...) in production. The var/ folders
# are created by KeysConfig.ready(), not here: importing settings has no side effects.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so the web app, the worker and beat
    # queue behind each other instead of failing with "database is locked"; WAL lets readers
    # run alongside a writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
# Persistent connections: opening one (PostgreSQL's handshake, or SQLite's open + PRAGMAs,
# measured at ~0.9 ms) costs more than the whole key check, so no request should pay for it.
# Health checks make Django test a reused connection once per request (a cheap `SELECT 1` on
# PostgreSQL) and drop one the server closed, instead of failing that request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DB_PREPARED_STATEMENTS", default=True
):
    # Server-side binding lets psycopg prepare statements it sees repeatedly (the key lookup
    # runs on every request): measured 342 -> 211 us per lookup. Turn off behind a pooler in
    # transaction mode (e.g. PgBouncer < 1.21), which cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": 2}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (development, tests) whitenoise finds files through the finders.
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []

LOGIN_URL = "admin:login"

# --- Admin login brute-force protection (django-axes; audit/logins.py) ----------------------
# Failed logins lock the username and the address for the cool-off, even with the right password;
# ADMIN_LOGIN_LOCK_USERNAME=0: addresses only (SECURITY.md, "Admin login lockout": the trade-off).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
_lock_username = env.bool("ADMIN_LOGIN_LOCK_USERNAME", default=True)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"] if _lock_username else ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "audit.logins.login_client_ip"
AXES_LOCKOUT_CALLABLE = "audit.logins.lockout_response"
AXES_VERBOSE = False
# No axes pages in the admin: deleting an attempt there would unlock without an audit entry.
AXES_ENABLE_ADMIN = False

# --- Redis (optional) -----------------------------------------------------------------------
# Celery broker and usage counters. Without it: a filesystem broker under var/ and an
# in-process usage buffer.
REDIS_URL = env.str("REDIS_URL", default="")

# Shared cache (one-time form tokens, so a double-submitted Generate form makes one key even
# across workers): Redis when configured, else per-process memory.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- API keys -------------------------------------------------------------------------------
# Every entry, its default and its meaning: keys/conf.py (the only reader of API_KEYS). Here only
# what the environment sets; an unset variable leaves the default.
_API_KEYS_FROM_ENV = {
    # HMAC-SHA256 pepper of key hashes; unset, SECRET_KEY serves (check --deploy warns).
    "PEPPER": ("API_KEY_PEPPER", env.str),
    "ALERT_RECIPIENTS": ("API_KEY_ALERT_RECIPIENTS", env.list),
    "ALERT_FROM": ("API_KEY_ALERT_FROM", env.str),
    "SITE_URL": ("SITE_URL", env.str),
    "USAGE_RETENTION_DAYS": ("API_KEY_USAGE_RETENTION_DAYS", env.int),
    "UNUSED_SCOPE_DAYS": ("API_KEY_UNUSED_SCOPE_DAYS", env.int),
    "LOOKUP_CACHE": ("API_KEY_LOOKUP_CACHE", env.bool),
    "LOOKUP_CACHE_SECONDS": ("API_KEY_LOOKUP_CACHE_SECONDS", env.int),
    "AUTH_FAILURES_PER_MINUTE": ("API_KEY_AUTH_FAILURES_PER_MINUTE", env.int),
    "USAGE_SHIP_INTERVAL": ("API_KEY_USAGE_SHIP_INTERVAL", env.float),
    "COUNTERS_FILE": ("API_KEY_COUNTERS_FILE", env.str),
}
API_KEYS = {
    name: cast(variable)
    for name, (variable, cast) in _API_KEYS_FROM_ENV.items()
    if variable in os.environ
}

# --- Audit log ------------------------------------------------------------------------------
# The key of the chain's MAC (audit/chain.py), kept out of the database. Unset: derived from
# API_KEY_PEPPER (or SECRET_KEY). Previous keys still verify the entries they signed.
AUDIT_CHAIN_KEY = env.str("AUDIT_CHAIN_KEY", default="")
AUDIT_CHAIN_PREVIOUS_KEYS = env.list("AUDIT_CHAIN_PREVIOUS_KEYS", default=[])
# Where the daily job appends the chain head (also logged on the "audit" logger).
AUDIT_HEAD_FILE = env.str("AUDIT_HEAD_FILE", default=str(VAR_DIR / "audit-head.log"))

# --- Django REST framework ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["keys.api.authentication.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["keys.api.permissions.HasKeyScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["keys.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "crm.filters.FilterBackend",  # django-filter's, skipped when no filter is named
        "crm.filters.SearchFilter",
        "crm.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "crm.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "keys.api.views.exception_handler",
    # No Django user is involved on the API: skip building AnonymousUser for every request.
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    "DEFAULT_SCHEMA_CLASS": "keys.api.schema.ScopedAutoSchema",
}

# OpenAPI 3 schema at /api/schema/, Swagger UI at /api/docs/ (static files from the sidecar
# package, served locally: no CDN).
_NO_VALIDATOR = {"validatorUrl": None}
SPECTACULAR_SETTINGS = {
    "TITLE": "Intellicon CRM API",
    # The introduction (authentication, errors, limits) is written by the post-processing hook.
    "DESCRIPTION": "The CRM's REST API for integrations.",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "keys.api.schema.finish_schema",
    ],
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Read-only (browser calls are refused); no validator.swagger.io call from the browser.
    "SWAGGER_UI_SETTINGS": {"supportedSubmitMethods": [], "docExpansion": "list", **_NO_VALIDATOR},
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if REDIS_URL:
    # A task whose worker died (SIGKILL, OOM, a lost machine) stays unacked in Redis until this
    # timeout, then goes to another worker. Kombu's default is an hour; 10 minutes gets a daily
    # job whose worker died back the same morning (the minute jobs expire before and the next
    # run catches up anyway). A task still running after 10 minutes is handed to a second
    # worker too: every job is safe to run twice at once, so that costs work, not correctness.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
else:
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis down: workers and beat keep retrying (forever, not Celery's default 100 tries) and carry
# on when it is back; requests never wait for the broker (nothing on the request path enqueues).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Revoke rotated keys whose grace period has ended (enforcement never waits for this job).
    # A run still queued when the next is due is dropped (expires): each run catches up fully.
    "revoke-grace-ended": {
        "task": "keys.tasks.revoke_grace_ended",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 55},
    },
    # Record expiries: one "expired" audit entry per key whose expiry passed (expires: as above).
    "record-expiries": {
        "task": "keys.tasks.record_expiries",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 55},
    },
    # Flush usage counters into hourly rows. Every 10 s: counts shipped to Redis since the last
    # flush are what a Redis restart without persistence loses, so this bounds that loss.
    "flush-usage": {
        "task": "keys.tasks.flush_usage",
        "schedule": timedelta(seconds=10),
        "options": {"expires": 9},
    },
    # Send queued alert and reminder e-mails: retries, and mails whose sender died mid-send.
    "send-outbox": {
        "task": "keys.tasks.send_outbox",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 55},
    },
    # Evaluate high-volume and error-spike alerts.
    "evaluate-alerts": {"task": "keys.tasks.evaluate_alerts", "schedule": timedelta(minutes=5)},
    # Daily: expiry reminders, unused-key alerts, rotation reminders (keys older than 90 days).
    "daily-reminders": {
        "task": "keys.tasks.daily_reminders",
        "schedule": crontab(hour=6, minute=0),
    },
    # Daily: prune hourly usage rows older than the retention setting.
    "prune-usage": {"task": "keys.tasks.prune_usage", "schedule": crontab(hour=3, minute=30)},
    # Daily: verify the audit chain against the last recorded head; record (file + log) today's.
    "record-audit-head": {
        "task": "keys.tasks.record_audit_head",
        "schedule": crontab(hour=4, minute=0),
    },
}

# --- E-mail ---------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
# Seconds any one step of an SMTP conversation may take (Django's default: wait forever). Mail is
# sent from the outbox after commit, so a stalled server holds no lock, but without a bound it
# would hold a worker for good.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="crm-keys@localhost")

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Trusted reverse proxies: how many X-Forwarded-For hops to trust for the client IP (0 = none).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# One line per event, keys cut out of every line: crm_keys/logconfig.py.
LOGGING = logging_settings(level=env.str("LOG_LEVEL", default="INFO"))
