"""A key's name is read by people in the admin, in e-mails and in a terminal: the model refuses
characters that make it read as something else (a right-to-left override turns "\u202egnp.exe"
into "exe.png"; a C1 control such as CSI is a command to a terminal). The key page, the
Generate page and the services refuse them with the same sentence (the CLI: test_cli_arguments).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from keys import services
from keys.models import APIKey
from tests.helpers import ACTOR, form_nonce, generate_data

pytestmark = pytest.mark.django_db

FORMAT_MESSAGE = "The name must not contain invisible formatting characters"
CONTROL_MESSAGE = "The name must not contain control characters."
REFUSED = [
    ("\u202egnp.exe", FORMAT_MESSAGE),  # right-to-left override
    ("pay\u200broll", FORMAT_MESSAGE),  # zero-width space
    ("\u2066admin\u2069", FORMAT_MESSAGE),  # bidi isolates
    ("\ufeffBOM", FORMAT_MESSAGE),
    ("x\u00ady", FORMAT_MESSAGE),  # soft hyphen
    ("term\x9b31m", CONTROL_MESSAGE),  # C1 CSI
    ("bell\x07", CONTROL_MESSAGE),
]


@pytest.mark.parametrize(("name", "message"), REFUSED)
def test_services_refuse_the_name(make_key: Any, name: str, message: str) -> None:
    with pytest.raises(services.KeyValidationError) as caught:
        services.key_generate(name=name, scopes={"contacts": ["view"]}, actor=ACTOR)
    assert caught.value.errors["name"][0].startswith(message)
    key, _ = make_key(name="Kept")
    with pytest.raises(services.KeyValidationError):
        services.key_update(key=key, data={"name": name}, actor=ACTOR)
    key.refresh_from_db()
    assert key.name == "Kept"


@pytest.mark.parametrize(("name", "message"), REFUSED[:2])
def test_the_generate_page_and_the_key_page_refuse_it(
    admin_client: Any, make_key: Any, name: str, message: str
) -> None:
    add_url = reverse("admin:keys_apikey_add")
    nonce = form_nonce(admin_client.get(add_url).content.decode())
    response = admin_client.post(add_url, generate_data(nonce, name=name))
    assert response.status_code == 200 and message in response.content.decode()
    assert not APIKey.objects.exists()

    key, _ = make_key(name="Kept")
    response = admin_client.post(
        reverse("admin:keys_apikey_change", args=[key.pk]),
        {"name": name, "description": "", "scopes__contacts__view": "on"},
    )
    assert response.status_code == 200 and message in response.content.decode()
    key.refresh_from_db()
    assert key.name == "Kept"


def test_names_in_any_script_are_kept(make_key: Any) -> None:
    """The zero-width joiners stay allowed: Persian and Indic words and emoji need them."""
    for name in ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "Team 👩\u200d💻", "Zoë"):
        key, _ = make_key(name=name)
        assert key.name == name
