"""A real Celery worker for the tests whose behaviour depends on one (on_commit kicks, retries, beat).

``celery_worker`` starts one worker subprocess per test session, on the test database and on a
queue of its own, and turns eager execution off for the test that asks for it, so a task published
by the code under test really crosses the broker and runs in another process, on another
database connection, after the publishing transaction has committed.

``celery_idle_queue`` instead points publishing at a fresh queue that nobody consumes, so a test
can count what was published (Redis ``LLEN``) without a worker racing it to the messages.

Both need PostgreSQL (the worker must see the test database, which SQLite keeps in memory) and a
Redis broker: use them only in tests marked ``postgres`` and ``broker``, with
``django_db(transaction=True)`` so that the worker can see the rows the test commits.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

T = TypeVar("T")

BASE_DIR = Path(settings.BASE_DIR)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_RECEIVED = re.compile(r"Task (?P<name>[\w.]+)\[(?P<id>[0-9a-f-]+)\] received")


def wait_for(probe: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy; return that, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or probe}")
        time.sleep(interval)


def _unique_queue(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _test_database_url() -> str:
    # pytest-django has renamed the database by now (``test`` becomes ``test_test``); the worker
    # must use that one, never the database named in DATABASE_URL.
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def _require_postgres_and_redis() -> None:
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith(
        ("redis://", "rediss://")
    ):
        pytest.fail(
            "a real Celery worker needs PostgreSQL and a Redis broker: "
            "mark the test `postgres` and `broker` so that it skips without them"
        )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children before their parents."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            found += [*_descendants(child), child]
    return found


def broker_client() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def forget_queue(client: redis.Redis, queue: str) -> None:
    # kombu keeps a queue's messages in a list named after it, and its bindings in two sets.
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


class WorkerProcess:
    """One ``celery worker`` subprocess consuming one queue; its log goes to a file.

    By default it runs the solo pool on the session's broker. Fault tests give it a broker of
    their own (``broker_url``), the Procfile's pool (``pool``, ``concurrency``) and environment
    variables of their own (``env``).
    """

    def __init__(
        self,
        queue: str,
        log_path: Path,
        *,
        broker_url: str | None = None,
        pool: str = "solo",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
    ):
        self.queue = queue
        self.nodename = f"{queue}@localhost"
        self.log_path = log_path
        self.broker_url = broker_url or settings.CELERY_BROKER_URL
        self.pool = pool
        self.concurrency = concurrency
        self.extra_env = env or {}
        self._log_mark = 0
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": _test_database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "SECRET_KEY": settings.SECRET_KEY,
            "DB_CONN_MAX_AGE": "0",  # hand connections back after each task; the flush must not wait
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            # solo by default: one task at a time, in the order they were published
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            "--loglevel=INFO",
            f"--queues={self.queue}",
            f"--hostname={self.nodename}",
            # Nothing to synchronise with: skip the cluster chatter that only slows the start.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with self.log_path.open("wb") as log:
            # Same process group as pytest: a Ctrl-C reaches the worker too, so none is left behind
            # holding a connection to the test database that pytest-django is about to drop.
            self._process = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while f"{self.nodename} ready." not in self.log():
            if self._process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {self._process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the Celery worker was not ready after {START_TIMEOUT:.0f}s:\n{self.log()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()  # SIGTERM: warm shutdown, finishes the task in hand
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no warm shutdown, nothing recorded.

        A prefork pool's children die with their parent, at the same instant.
        """
        if self._process is not None and self._process.poll() is None:
            for pid in [*_descendants(self._process.pid), self._process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._process.wait(STOP_TIMEOUT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- what one test sees --------------------------------------------------------------
    def mark(self) -> None:
        """Start a new test: ``log_since_mark`` and ``tasks_received`` only look after this."""
        self._log_mark = len(self.log())

    def log_since_mark(self) -> str:
        return self.log()[self._log_mark :]

    def idle(self) -> bool:
        """Nothing waits in the queue and the worker runs no task (tasks held for a countdown are
        not running). A solo pool answers a control request only between tasks."""
        if broker_client().llen(self.queue):
            return False
        active = celery_app.control.inspect(destination=[self.nodename], timeout=0.5).active()
        return active is not None and active.get(self.nodename) == [] and not broker_client().llen(self.queue)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Give the worker ``timeout`` seconds to finish what the test set going (a drain the last
        task woke, say): the test database is flushed after the test, and a worker still writing
        to it can deadlock with the flush. A task held for a countdown is not waited for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.idle():
            time.sleep(0.05)

    def tasks_received(self, name: str | None = None) -> list[str]:
        """Ids of the tasks (named ``name``, if given) the worker received since ``mark``."""
        return [
            match["id"]
            for match in _RECEIVED.finditer(self.log_since_mark())
            if name is None or match["name"] == name
        ]


class IdleQueue:
    """A queue nobody consumes: what is published to it stays there to be counted."""

    def __init__(self, name: str, client: redis.Redis):
        self.name = name
        self._client = client

    def depth(self) -> int:
        return self._client.llen(self.name)


@contextmanager
def publish_for_real_to(queue: str, broker_url: str | None = None) -> Iterator[None]:
    """Tasks this process publishes go to ``queue`` (on ``broker_url``, if given) instead of running
    inline."""
    # Router.route reads task_default_queue on every publish, so this redirects .delay() too.
    default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    if broker_url:
        _publish_to_broker(broker_url)
    try:
        yield
    finally:
        if broker_url:
            _publish_to_broker(None)
        celery_app.conf.task_default_queue = default_queue
        celery_app.conf.task_always_eager = True


def _publish_to_broker(url: str | None) -> None:
    # Publishing reads broker_write_url before broker_url, which $CELERY_BROKER_URL overrides. The
    # app keeps connection and producer pools for the URL it used first: drop them (as Celery does
    # after a fork) so that the next publish connects to ``url`` (None: back to broker_url).
    celery_app.conf.broker_write_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory) -> Iterator[WorkerProcess]:
    """The session's worker; it is stopped before pytest-django drops the test database."""
    _require_postgres_and_redis()
    queue = _unique_queue("livra-test")
    worker = WorkerProcess(queue, tmp_path_factory.mktemp("celery") / "worker.log")
    try:
        worker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield worker
    worker.stop()
    forget_queue(broker_client(), queue)


@pytest.fixture
def celery_worker(celery_worker_process, celery_runs_tasks_inline) -> Iterator[WorkerProcess]:
    """Tasks published during the test go through Redis to the real worker.

    On failure, pytest shows the worker's log for the test (printed at teardown).
    """
    worker = celery_worker_process
    worker.mark()
    with publish_for_real_to(worker.queue):
        yield worker
    worker.wait_idle()
    print(f"--- celery worker log ({worker.nodename}) ---\n{worker.log_since_mark()}")


@pytest.fixture
def celery_idle_queue(django_db_setup, celery_runs_tasks_inline) -> Iterator[IdleQueue]:
    """Tasks published during the test wait, unconsumed, in a fresh Redis queue."""
    _require_postgres_and_redis()
    client = broker_client()
    queue = IdleQueue(_unique_queue("livra-idle"), client)
    with publish_for_real_to(queue.name):
        yield queue
    forget_queue(client, queue.name)
