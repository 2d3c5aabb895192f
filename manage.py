#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_keys.settings")
    # The command line reads the development .env (`make run` writes it), so README's commands
    # work as written. The serving processes (crm_keys.wsgi under gunicorn, Celery) never read it
    # unless asked: a .env left on a server cannot turn DEBUG on there, and `check --deploy`
    # flags it (keys.W005) when a command did read one.
    os.environ.setdefault("CRM_KEYS_READ_DOTENV", "1")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:  # e.g. no SECRET_KEY: say what to set, in one line
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
