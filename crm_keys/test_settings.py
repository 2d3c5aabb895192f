"""Settings for the test suite: production-like (DEBUG off), never reads a developer's .env."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("API_KEY_PEPPER", "test-pepper")
os.environ["CRM_KEYS_READ_DOTENV"] = "0"
os.environ.setdefault("DJANGO_DEBUG", "0")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
