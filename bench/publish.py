"""How long an after-commit publish (``config.celery.task_publish``) holds up the request that
committed, when Redis is up, gone, frozen, and back again.

    .venv/bin/python bench/publish.py [--publishes N]

It starts a ``redis-server`` of its own on a free loopback port (nothing on disk) and publishes
``messaging.outbox_drain`` to a queue nobody consumes, with Livra's settings (the broker's
timeouts and publish retry policy): ``--publishes`` times with Redis up; after SIGKILL (gone:
connections refused); after SIGSTOP (frozen: connections accepted, nothing answered, as a hung
server or a network path that drops packets); and after a restart on the same port, where the
process's pooled connection predates the restart. Each state prints how many publishes the broker
took and their p50 / max in milliseconds. No database is touched.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(port: int, workdir: str) -> subprocess.Popen:
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", workdir], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit(f"redis-server did not start on port {port}")


def measure(state: str, count: int, publish) -> None:
    took, times = 0, []
    for _ in range(count):
        started = time.perf_counter()
        took += publish()
        times.append((time.perf_counter() - started) * 1000)
    p50, worst = statistics.median(times), max(times)
    print(f"{state:<22} {took:>3}/{count:<3} taken   p50 {p50:8.1f} ms   max {worst:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishes", type=int, default=20, help="per state (default 20; 3 when frozen)")
    args = parser.parse_args()

    port = free_port()
    os.environ.update(
        CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0",
        CELERY_TASK_DEFAULT_QUEUE=f"bench-publish-{os.getpid()}",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only"),
        DJANGO_SETTINGS_MODULE="config.settings",
        LOG_LEVEL="ERROR",  # one warning per refused publish otherwise
    )
    import django

    django.setup()
    from config.celery import app, task_publish
    from messaging.tasks import outbox_drain_task

    def publish() -> bool:
        return task_publish(outbox_drain_task)

    conf = app.conf
    print(f"transport options {conf.broker_transport_options}, retry {conf.task_publish_retry_policy}")
    with tempfile.TemporaryDirectory() as workdir:
        redis_server = start_redis(port, workdir)
        try:
            publish()  # connects and declares the queue once
            measure("up", args.publishes, publish)
            redis_server.kill()
            redis_server.wait()
            measure("gone (SIGKILL)", args.publishes, publish)
            redis_server = start_redis(port, workdir)
            measure("back (first publish)", 1, publish)
            measure("back", args.publishes, publish)
            redis_server.send_signal(signal.SIGSTOP)
            measure("frozen (SIGSTOP)", min(args.publishes, 3), publish)
        finally:
            redis_server.send_signal(signal.SIGCONT)
            redis_server.kill()
            redis_server.wait()


if __name__ == "__main__":
    main()
