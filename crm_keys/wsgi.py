"""WSGI entry point (gunicorn crm_keys.wsgi; runserver uses it too)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_keys.settings")

application = get_wsgi_application()

# A web process ships its last usage counts when it is told to stop.
from keys.usage.recorder import exit_through_atexit_on_sigterm  # noqa: E402

exit_through_atexit_on_sigterm()
