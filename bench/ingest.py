"""How many signed Shopify deliveries per second the store webhook accepts under gunicorn, next to a
bare Django view that inserts one similar row (the floor), on the same server in the same run.

    DATABASE_URL=postgres://user@host:5432/anything CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/ingest.py [--seconds 10] [--concurrency 16] [--workers N] \
        [--worker-class sync,gthread] [--threads 4] [--load-processes 1]

It creates a throwaway database (``livra_ingest_<pid>``) on the server DATABASE_URL names, with a
Shopify store and ``bench_floor`` (a copy of ``orders_storedelivery`` without foreign keys), and
drops it at exit; the webhook's tasks go to a Redis queue of its own, which no worker consumes
(the bench measures acceptance, not processing) and which is deleted at exit. Per worker class:

- gunicorn runs Livra with ``DJANGO_SETTINGS_MODULE=bench.ingest_floor`` (Livra's settings and
  URLs plus the floor view at ``/bench/floor/``): DEBUG off, WARNING logs, no access log,
  ``DB_CONN_MAX_AGE=60``, ``--workers`` processes (default: the CPU count).
- a separate load process (``--load-processes`` of them) holds ``--concurrency`` connections and
  posts ``orders/create`` deliveries, one after the other on each, for ``--seconds``: the order of
  tests/fixtures/stores/shopify/orders_create.json as compact JSON, a few ids changed per body,
  signed beforehand (``X-Shopify-Hmac-Sha256`` with the store's ``platform_secret``) and sent with
  a fresh ``X-Shopify-Webhook-Id`` / ``X-Shopify-Event-Id`` each (the signature covers the body
  only). Requests are prebuilt bytes on raw sockets, so the client costs little CPU (printed).
- both targets are warmed up, then measured: floor, real, floor again (their mean is the floor).
  Accepted/s is the 200s answered inside the window over its length; p50/p99 are their latencies,
  connect included (a sync worker closes every connection). CPU ms per answered request by
  process from /proc (Redis from its INFO), then the rows and the queued drain tasks are counted
  (coalesced: one per pending drain, not one per delivery).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import platform
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import cpu_seconds, forget_queue, machine_busy_seconds, postmaster_pid  # noqa: E402

FIXTURE = ROOT / "tests/fixtures/stores/shopify/orders_create.json"
SHOP_DOMAIN = "atlas-souk.myshopify.com"  # the fixture's shop
STORE_SLUG = "ingest-bench"
REAL_PATH = f"/webhooks/shopify/{STORE_SLUG}/"
FLOOR_PATH = "/bench/floor/"
BODY_VARIANTS = 64  # distinct orders (ids, names), cycled through
TARGET_RATIO = 0.70
TARGET_P99_MS = 100.0
START_MARGIN = 0.5  # seconds between forking the load processes and the window's start
STOP_TIMEOUT = 30.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="per target, untimed (default 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="open connections (default 16)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="gunicorn's (default: CPUs)")
    parser.add_argument("--worker-class", default="sync,gthread", help="gunicorn worker classes to measure")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker (default 4)")
    parser.add_argument("--load-processes", type=int, default=1, help="load generator processes (default 1)")
    broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--broker-url", default=broker_url, help="a Redis broker (default: $CELERY_BROKER_URL)"
    )
    args = parser.parse_args()
    args.worker_class = args.worker_class.split(",")
    return args


def configure_environment(args: argparse.Namespace) -> None:
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url or dj_database_url.parse(url)["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(
            "bench/ingest.py measures PostgreSQL only: set DATABASE_URL=postgres://user@host:port/db "
            "(it creates and drops its own throwaway database on that server)."
        )
    if not args.broker_url.startswith(("redis://", "rediss://")):
        sys.exit("bench/ingest.py needs a Redis broker: set CELERY_BROKER_URL=redis://host:port/db")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ["LOG_LEVEL"] = "WARNING"  # one INFO line per delivery is not what is measured
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1"
    os.environ["DB_CONN_MAX_AGE"] = "60"  # kept connections, for the floor and the real view alike
    os.environ["CELERY_BROKER_URL"] = args.broker_url
    # A queue of its own that no worker consumes: nothing processes deliveries of a dropped database.
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"livra-ingest-{os.getpid()}"


# --- the data --------------------------------------------------------------------------------------
def create_store_and_floor_table(secret: str) -> None:
    from django.db import connection

    from orders.models import Store

    shopify = {"platform": "shopify", "platform_secret": secret, "shop_domain": SHOP_DOMAIN}
    Store.objects.create(name="Ingest bench", slug=STORE_SLUG, **shopify)
    with connection.cursor() as cursor:
        # Same columns, defaults, identity, indexes (unique key included) and checks; LIKE copies
        # no foreign keys.
        cursor.execute("CREATE TABLE bench_floor (LIKE orders_storedelivery INCLUDING ALL)")
        cursor.execute("ANALYZE")


def signed_bodies(secret: str) -> list[tuple[bytes, str]]:
    """``BODY_VARIANTS`` orders as Shopify sends them (compact UTF-8 JSON) with their signatures."""
    order = json.loads(FIXTURE.read_text())
    bodies = []
    for i in range(BODY_VARIANTS):
        order_id = order["id"] + i
        variant = {**order, "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}"}
        variant.update(name=f"#{10001 + i}", order_number=10001 + i)
        body = json.dumps(variant, separators=(",", ":"), ensure_ascii=False).encode()
        signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        bodies.append((body, signature))
    return bodies


def request_heads(path: str, port: int, bodies: list[tuple[bytes, str]]) -> list[bytes]:
    """Each body's request line and headers, but for the per-delivery ids and the blank line."""
    triggered_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Shopify-Captain-Hook\r\n"
            f"Accept: */*\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Shopify-Topic: orders/create\r\nX-Shopify-Hmac-Sha256: {signature}\r\n"
            f"X-Shopify-Shop-Domain: {SHOP_DOMAIN}\r\nX-Shopify-API-Version: 2024-10\r\n"
            f"X-Shopify-Triggered-At: {triggered_at}\r\n"
        ).encode()
        for body, signature in bodies
    ]


# --- the load generator (a process of its own) --------------------------------------------------
def read_response(sock: socket.socket) -> tuple[int, bool]:
    """(status, whether the connection stays open) of one HTTP/1.1 response."""
    data = b""
    while b"\r\n\r\n" not in data:
        if not (chunk := sock.recv(65536)):
            raise ConnectionError("closed before the response")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    fields = {name.strip().lower(): value.strip() for name, value in (line.split(b":", 1) for line in lines)}
    # Django (CommonMiddleware) and gunicorn's own errors always give a length.
    while len(rest) < int(fields.get(b"content-length", 0)):
        if not (chunk := sock.recv(65536)):
            raise ConnectionError("closed within the body")
        rest += chunk
    return int(status_line.split()[1]), fields.get(b"connection", b"").lower() != b"close"


def post_until(address, heads, bodies, offset: int, start_at: float, stop_at: float, results: list) -> None:
    """One connection's worth of deliveries, back to back, from ``start_at`` to ``stop_at``."""
    statuses, in_window, latencies, sock, sent = Counter(), Counter(), [], None, offset
    time.sleep(max(0.0, start_at - time.monotonic()))
    while (started := time.monotonic()) < stop_at:
        variant, sent = sent % len(bodies), sent + 1
        ids = f"X-Shopify-Webhook-Id: {uuid.uuid4()}\r\nX-Shopify-Event-Id: {uuid.uuid4()}\r\n\r\n"
        try:
            if sock is None:
                sock = socket.create_connection(address, timeout=30)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(heads[variant] + ids.encode() + bodies[variant])
            status, keep_open = read_response(sock)
        except OSError:
            status, keep_open = "connection error", False
        finished = time.monotonic()
        statuses[status] += 1
        if finished <= stop_at:
            in_window[status] += 1
            if status == 200:
                latencies.append(finished - started)
        if not keep_open and sock is not None:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    results.append((statuses, in_window, latencies))


def load_process(address, heads, bodies, connections: int, first: int, start_at: float, stop_at: float):
    """``connections`` client threads; returns what they got and this process's CPU in the window."""
    results: list = []
    arguments = [(address, heads, bodies, first + n, start_at, stop_at, results) for n in range(connections)]
    threads = [threading.Thread(target=post_until, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # user + system, all threads
    time.sleep(max(0.0, stop_at - time.monotonic()))
    cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu
    for thread in threads:
        thread.join()
    return results, cpu


# --- the server -----------------------------------------------------------------------------------
class Gunicorn:
    def __init__(self, worker_class: str, workers: int, threads: int, log_path: Path):
        from urllib.parse import urlsplit

        from django.db import connection

        with socket.socket() as probe:  # a free port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        throwaway = f"/{connection.settings_dict['NAME']}"  # same server, user and options
        database_url = urlsplit(os.environ["DATABASE_URL"])._replace(path=throwaway).geturl()
        command = [sys.executable, "-m", "gunicorn", "config.wsgi", f"--bind=127.0.0.1:{self.port}"]
        command += [f"--workers={workers}", f"--worker-class={worker_class}", "--log-level=warning"]
        if worker_class == "gthread":
            command.append(f"--threads={threads}")
        env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "bench.ingest_floor"}
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the floor URL answers a GET (405): the workers have loaded Django."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(f"GET {FLOOR_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                    if read_response(sock)[0] == 405:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"gunicorn did not start (exit code {self.process.returncode}): see {self.log_path}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # graceful: finishes the requests in hand
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


# --- the measurements -------------------------------------------------------------------------------
def cpu_snapshot(server: Gunicorn, postmaster: int | None) -> dict:
    import redis
    from django.conf import settings

    redis_cpu = redis.Redis.from_url(settings.CELERY_BROKER_URL).info("cpu")
    return {
        "gunicorn": cpu_seconds(server.process.pid),  # the master and its workers
        "PostgreSQL": cpu_seconds(postmaster, reaped=True) if postmaster else 0.0,
        "Redis": redis_cpu["used_cpu_user"] + redis_cpu["used_cpu_sys"],
        "machine": machine_busy_seconds(),
    }


def drive(args, server: Gunicorn, heads, bodies, seconds: float, postmaster: int | None) -> dict:
    """Post for ``seconds`` from the load processes; what came back and what it cost."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # a forked child must not share this process's socket
    processes = args.load_processes
    per_process = [
        args.concurrency // processes + (n < args.concurrency % processes) for n in range(processes)
    ]
    start_at = time.monotonic() + START_MARGIN
    stop_at = start_at + seconds
    snapshots = []

    def snapshot_at(moment: float) -> None:
        time.sleep(max(0.0, moment - time.monotonic()))
        snapshots.append(cpu_snapshot(server, postmaster))

    address = ("127.0.0.1", server.port)
    jobs = [
        (address, heads, bodies, count, sum(per_process[:n]), start_at, stop_at)
        for n, count in enumerate(per_process)
    ]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        # The window's CPU, taken while the load runs (this process only waits for it); the
        # thread starts once the load processes are forked.
        sampler = threading.Thread(target=lambda: [snapshot_at(start_at), snapshot_at(stop_at)])
        sampler.start()
        outcomes = pool.starmap(load_process, jobs)
    sampler.join()
    statuses, in_window, latencies = Counter(), Counter(), []
    for results, _ in outcomes:
        for connection_statuses, connection_in_window, connection_latencies in results:
            statuses += connection_statuses
            in_window += connection_in_window
            latencies += connection_latencies
    answered = sum(in_window.values())
    cpu = {name: (snapshots[1][name] - snapshots[0][name]) for name in snapshots[0]}
    cpu["load generator"] = sum(load_cpu for _, load_cpu in outcomes)
    machine = cpu.pop("machine")
    cpu["the rest"] = machine - sum(cpu.values())
    return {
        "rate": in_window[200] / seconds,
        "p50": percentile_ms(latencies, 50),
        "p99": percentile_ms(latencies, 99),
        "errors": {status: n for status, n in statuses.items() if status != 200},
        "accepted": statuses[200],
        "cpu_ms": {name: used / max(answered, 1) * 1000 for name, used in cpu.items()},
        "server_ms": sum(cpu[name] for name in ("gunicorn", "PostgreSQL", "Redis")) / max(answered, 1) * 1000,
        "busy": machine / seconds / os.cpu_count(),
        "load_share": cpu["load generator"] / seconds,
    }


def percentile_ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def measure_worker_class(args, worker_class: str, bodies, log_dir: Path, postmaster: int | None):
    """Warm both targets up, then measure floor, real, floor again; and the 200s of each target."""
    steps = [("warm-up floor", FLOOR_PATH, args.warmup), ("warm-up real", REAL_PATH, args.warmup)]
    steps += [("floor", FLOOR_PATH, args.seconds), ("real", REAL_PATH, args.seconds)]
    steps += [("floor again", FLOOR_PATH, args.seconds)]
    server = Gunicorn(worker_class, args.workers, args.threads, log_dir / f"gunicorn-{worker_class}.log")
    try:
        heads = {path: request_heads(path, server.port, bodies) for path in (FLOOR_PATH, REAL_PATH)}
        raw = [body for body, _ in bodies]
        phases = {
            name: drive(args, server, heads[path], raw, seconds, postmaster) for name, path, seconds in steps
        }
    finally:
        server.stop()
    accepted = Counter()
    for name, path, _ in steps:
        accepted["real" if path == REAL_PATH else "floor"] += phases[name]["accepted"]
    return {name: phases[name] for name in ("floor", "real", "floor again")}, accepted


def stored_counts() -> dict:
    """Rows of both tables, the real ones as the webhook should leave them, and the queued tasks."""
    import redis
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM bench_floor), count(*), count(*) FILTER "
            "(WHERE topic = 'orders/create' AND status = 'received') FROM orders_storedelivery"
        )
        floor_rows, real_rows, real_as_expected = cursor.fetchone()
    queued = redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(settings.CELERY_TASK_DEFAULT_QUEUE)
    return {"floor": floor_rows, "real": real_rows, "real_as_expected": real_as_expected, "queued": queued}


# --- the report ---------------------------------------------------------------------------------------
def print_worker_class(args, worker_class: str, phases: dict, totals: Counter, stored: dict) -> None:
    threads = f" × {args.threads} threads" if worker_class == "gthread" else ""
    print(
        f"gunicorn {worker_class}, {args.workers} workers{threads}; {args.concurrency} connections from "
        f"{args.load_processes} load process(es), {args.seconds:g} s per measurement"
    )
    names = ", ".join(phases["floor"]["cpu_ms"])
    print(f"  {'':12}{'accepted/s':>11}{'p50 ms':>8}{'p99 ms':>8}  CPU ms per answer ({names}); errors")
    for name, phase in phases.items():
        cpu = " / ".join(f"{ms:.2f}" for ms in phase["cpu_ms"].values())
        errors = ", ".join(f"{status}: {n}" for status, n in phase["errors"].items()) or "none"
        print(
            f"  {name:12}{phase['rate']:11.1f}{phase['p50']:8.1f}{phase['p99']:8.1f}  {cpu}; "
            f"CPUs {phase['busy']:.0%} busy, the load generator {phase['load_share']:.0%} of one; {errors}"
        )
    floor, real = (phases["floor"]["rate"] + phases["floor again"]["rate"]) / 2, phases["real"]["rate"]
    ratio, p99 = real / floor if floor else 0.0, phases["real"]["p99"]
    print(
        f"  real / floor (mean {floor:.1f}/s): {ratio:.0%}, target {TARGET_RATIO:.0%}: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}; real p99 {p99:.1f} ms, "
        f"p99 < {TARGET_P99_MS:g} ms: {'met' if p99 < TARGET_P99_MS else 'NOT met'}"
    )
    # Rates move with whatever else the machine runs; CPU per answer much less so.
    floor_ms = (phases["floor"]["server_ms"] + phases["floor again"]["server_ms"]) / 2
    print(
        f"  server CPU (gunicorn + PostgreSQL + Redis) per answer: floor {floor_ms:.2f} ms, real "
        f"{phases['real']['server_ms']:.2f} ms; CPU-bound, the real would reach "
        f"{floor_ms / phases['real']['server_ms']:.0%} of the floor"
    )
    checks = [
        ("orders_storedelivery rows", stored["real"], totals["real"]),
        ("of them orders/create and received", stored["real_as_expected"], totals["real"]),
        ("bench_floor rows", stored["floor"], totals["floor"]),
    ]
    print("  all runs so far, against their 200s:")
    for name, count, accepted in checks:
        print(f"    {name} {count} = {accepted}: {'OK' if count == accepted else 'MISMATCH'}")
    # Wakeups are coalesced (orders.wakeups): a drain task is published when none is pending, so
    # with no worker draining, a few tasks wait for all those rows; none would be a lost wakeup.
    drains = stored["queued"]
    print(f"    inbox drain tasks waiting for them {drains}: {'OK' if drains else 'MISMATCH (lost wakeup)'}")


def main() -> None:
    args = parse_args()
    configure_environment(args)

    import django

    django.setup()

    import gunicorn
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases
    from kombu.utils.url import maybe_sanitize_url

    load_before = os.getloadavg()
    connection.settings_dict["TEST"]["NAME"] = f"livra_ingest_{os.getpid()}"
    log_dir = Path(tempfile.mkdtemp(prefix="livra-ingest-"))
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    try:
        secret = secrets.token_hex(32)
        create_store_and_floor_table(secret)
        bodies = signed_bodies(secret)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version')")
            (server_version,) = cursor.fetchone()
        print(
            f"{os.cpu_count()} CPUs, PostgreSQL {server_version}, Python {platform.python_version()}, "
            f"Django {django.get_version()}, gunicorn {gunicorn.__version__}; "
            f"load average before the run {load_before[0]:.2f}"
        )
        broker = maybe_sanitize_url(settings.CELERY_BROKER_URL)
        print(f"throwaway database {connection.settings_dict['NAME']}, broker {broker} (queue not consumed)")
        kilobytes = len(bodies[0][0]) / 1024
        print(f"body {FIXTURE.relative_to(ROOT)}, compact: {kilobytes:.1f} kB; gunicorn logs in {log_dir}")
        postmaster = postmaster_pid()
        totals = Counter()
        for worker_class in args.worker_class:
            print()
            phases, accepted = measure_worker_class(args, worker_class, bodies, log_dir, postmaster)
            totals.update(accepted)
            print_worker_class(args, worker_class, phases, totals, stored_counts())
    finally:
        connection.close()
        teardown_databases(old_config, verbosity=0)
        forget_queue()
    print("throwaway database dropped, queue deleted")


if __name__ == "__main__":
    main()
