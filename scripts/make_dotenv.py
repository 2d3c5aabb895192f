"""Write a local .env for development (once): DEBUG on, a random SECRET_KEY and key pepper."""

import secrets
from pathlib import Path

path = Path(__file__).resolve().parent.parent / ".env"
if not path.exists():
    path.write_text(
        "# Local development settings written by `make run`. Not for production.\n"
        "DJANGO_DEBUG=1\n"
        f"SECRET_KEY={secrets.token_urlsafe(48)}\n"
        f"API_KEY_PEPPER={secrets.token_urlsafe(32)}\n"
        "API_KEY_ALERT_RECIPIENTS=admin@example.com\n"
    )
    path.chmod(0o600)
    print(f"Wrote {path} (development settings).")
