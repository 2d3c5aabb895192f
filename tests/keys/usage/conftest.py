"""Usage tests: no background shipper, so every figure is deterministic; each runs on both counter
backends where it asks for ``backend``."""

import pytest

from tests.helpers import backend, usage_settings  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def _usage(usage_settings: None) -> None:  # noqa: F811
    pass
