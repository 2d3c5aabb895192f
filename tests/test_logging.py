"""The log says each thing once: an expected 4xx is the access log's one line, not a warning
with a traceback besides it; a 5xx keeps its traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_an_expected_403_in_the_admin_logs_no_warning_or_traceback(
    staff_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="django"):
        assert staff_client().get("/admin/keys/apikey/").status_code == 403
    assert [r for r in caplog.records if r.name.startswith("django.request")] == []
    assert not any(r.exc_info for r in caplog.records)


def test_django_messages_have_one_handler_even_in_debug() -> None:
    django_logger = logging.getLogger("django")
    ours = [h for h in django_logger.handlers if not type(h).__module__.startswith("_pytest")]
    assert len(ours) == 1 and not django_logger.propagate
    assert logging.getLogger("django.request").getEffectiveLevel() == logging.ERROR


def test_a_successful_admin_login_adds_no_log_lines(
    client: Any, admin_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """django-axes logs four INFO lines per successful login; the access line is enough."""
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            "/admin/login/?next=/admin/", {"username": "admin", "password": "password"}
        )
    assert response.status_code == 302
    assert [r.getMessage() for r in caplog.records if r.name.startswith("axes")] == []


@pytest.mark.parametrize("path", ["/api/v1/contacts/", "/admin/"])
def test_a_bad_host_header_is_one_warning_line_without_traceback(
    client: Any, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = client.get(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    security = [r for r in caplog.records if r.name.startswith("django.security")]
    assert [r.levelname for r in security] == ["WARNING"]
    assert "evil.example" in security[0].getMessage()
    assert "\n" not in security[0].getMessage()
    assert not any(r.exc_info or r.exc_text for r in caplog.records)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
