import pytest

from crm_keys.redis_client import get_redis
from keys.api import protections


@pytest.fixture(autouse=True)
def fresh_limits():
    """Rate-limit state is per process (and in Redis when configured): start each test clean."""
    protections.reset_local_state()
    client = get_redis()
    if client is not None:
        for pattern in ("icrm:rl:*", "icrm:authok:*"):
            for name in client.scan_iter(pattern):
                client.delete(name)
    yield
    protections.reset_local_state()
