"""The API holds its own contract under a property-based fuzzer: schemathesis, driven by
/api/schema/, sends generated requests with a full-access key to the WSGI app and checks every
response: no server error, a status code and a content type the schema documents for that
operation, and a body that matches the documented schema.

Each operation's examples run inside the test's transaction; as in Django's test client, the
WSGI handler is kept from closing the connection after each request. Hypothesis runs a bounded,
derandomized number of examples per operation, so the suite stays quick and repeatable."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crm.models import Contact, Lead, Opportunity
from keys import services
from keys.scopes import PRESETS

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_in_the_test_transaction():
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def full_key(db, actor):
    return services.key_generate(
        name="Contract", scopes=PRESETS["full"].scopes(), actor=actor
    ).full_key


@pytest.fixture
def records(db):
    """A few rows for the lists, exports and the ids the fuzzer happens to hit."""
    for _ in range(3):
        contact = Contact.objects.create(first_name="Ada", last_name="L", phone="+1-555")
        lead = Lead.objects.create(first_name="Al", last_name="T", contact=contact)
        Opportunity.objects.create(name="Deal", amount="10.50", lead=lead)


# Loaded at collection: serving the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_schema(case, wsgi_in_the_test_transaction, full_key, records):
    # Both headers: schemathesis fills every documented security scheme (the same key twice is
    # fine; two different keys would be a 401).
    headers = {"Authorization": f"Bearer {full_key}", "X-API-Key": full_key}
    case.call_and_validate(headers=headers, checks=CHECKS)
