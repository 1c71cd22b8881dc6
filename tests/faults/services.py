"""Services a fault test starts, breaks and brings back itself.

The session's PostgreSQL and Redis are shared with every other test, so a fault test never stops
them: it starts a ``redis-server`` of its own on a free port (and stops and restarts it), and cuts
the test database's connections with ``pg_terminate_backend`` (the server itself stays up).
"""

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import redis
from django.db import connection

START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A ``redis-server`` process on 127.0.0.1 that a test can stop and start again on the same port.

    Like the machine's own Redis it keeps nothing on disk: a stop loses what the broker held,
    the harshest outage a broker can have.
    """

    def __init__(self, workdir: Path, port: int | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        command = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                pass
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port}: {self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Gone at once (SIGKILL): clients see their connections reset, as in a crash or a lost host."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(START_TIMEOUT)

    def freeze(self) -> None:
        """Stopped, not gone (SIGSTOP): connections open and commands are taken, but nothing is
        answered, as with a Redis that hangs or a network path that drops packets."""
        if self.running():
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.running():
            self._process.send_signal(signal.SIGCONT)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


def pg_terminate_backends(*, except_own: bool = True) -> int:
    """Cut every connection to the test database (workers', servers', this process's other ones),
    as a database restart or failover does; returns how many were cut. The server stays up."""
    settings = connection.settings_dict
    own = None
    if except_own:
        connection.ensure_connection()
        own = connection.connection.info.backend_pid
    # A separate connection to the maintenance database: this one must survive what it does.
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"] or "postgres",
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid() AND pid IS DISTINCT FROM %s",
            [settings["NAME"], own],
        ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)
