"""What every fault test may start: a Redis of its own, to stop, freeze and start again."""

import pytest

# The outbox's fault tests' fixtures: a Twilio fake in the workers' environment, a store texting
# through it, and workers of the tests' own.
from tests.faults.outbox import sms_store, twilio, workers  # noqa: F401
from tests.faults.services import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    """A ``redis-server`` of the test's own on a free port (the session's Redis is never touched)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
