"""Livra's web server and beat as the Procfile runs them, for fault tests (the worker is
``tests.celery_worker.WorkerProcess``).

Each runs on the test database and on the broker and queue the test gives it, keeps its log in a
file, and is stopped by the test that started it.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings

from tests.celery_worker import _test_database_url
from tests.faults.services import free_port

BASE_DIR = Path(settings.BASE_DIR)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def livra_environment(broker_url: str, queue: str, **extra: str) -> dict[str, str]:
    """What the Procfile's processes read from the environment, for the test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class _Process:
    def __init__(self, log_path: Path):
        self.log_path = log_path
        self._process: subprocess.Popen | None = None

    def _spawn(self, command: list[str], env: dict[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if not self.running():
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_until(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if not self.running():
                raise RuntimeError(f"{what} exited with {self._process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} was not ready after {START_TIMEOUT:.0f}s:\n{self.log()}")
            time.sleep(0.1)


class WebServer(_Process):
    """gunicorn serving Livra on a free loopback port, with sync workers as the Procfile's ``web``."""

    def __init__(
        self,
        log_path: Path,
        *,
        broker_url: str,
        queue: str,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ):
        super().__init__(log_path)
        self.port = free_port()
        self.workers = workers
        self.env = livra_environment(broker_url, queue, ALLOWED_HOSTS="127.0.0.1", **(env or {}))

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "WebServer":
        return self.launch().wait_ready()

    def launch(self) -> "WebServer":
        """Start gunicorn and return at once (it loads Django meanwhile; ``wait_ready`` waits)."""
        command = [sys.executable, "-m", "gunicorn", "config.wsgi", f"--bind=127.0.0.1:{self.port}"]
        self._spawn([*command, f"--workers={self.workers}"], self.env)
        return self

    def wait_ready(self) -> "WebServer":
        self._wait_until(self._answers, "gunicorn")
        return self

    def _answers(self) -> bool:
        try:
            requests.get(f"{self.url}/admin/login/", timeout=5)  # the first one loads Django
        except requests.RequestException:
            return False
        return True


class BeatProcess(_Process):
    """``celery beat`` with django-celery-beat's database scheduler, as the Procfile's ``beat``."""

    def __init__(self, log_path: Path, *, broker_url: str, queue: str, env: dict[str, str] | None = None):
        super().__init__(log_path)
        self.env = livra_environment(broker_url, queue, **(env or {}))

    def start(self) -> "BeatProcess":
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            # The database scheduler keeps nothing on disk but the pid file: none, for the test.
            "--pidfile=",
        ]
        self._spawn(command, self.env)
        self._wait_until(lambda: "beat: Starting..." in self.log(), "celery beat")
        return self
