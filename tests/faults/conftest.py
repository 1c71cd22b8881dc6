"""What every fault test may start: a Redis of its own, to stop, freeze and start again."""

import pytest

from tests.faults.services import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    """A ``redis-server`` of the test's own on a free port (the session's Redis is never touched)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
