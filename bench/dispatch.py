"""How many outbox messages per second a real Celery worker sends to a loopback Twilio.

    DATABASE_URL=postgres://user@host:5432/anything CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/dispatch.py [--messages N] [--latency-messages M] [--rate R] \
        [--pools prefork:2,threads:8]

It creates a throwaway database (``livra_dispatch_<pid>``) on the server DATABASE_URL names and
drops it at exit; it publishes to a Redis queue of its own and deletes that at exit. Per pool:

- the fake's maximum: ``FakeTwilio`` (tests/fakes/twilio.py) runs in a process of its own and is
  driven through the adapter (``messaging.providers.twilio`` → twilio SDK → requests) for a few
  seconds by as many clients as the worker sends with: its processes (prefork) or its one process,
  each with ``LIVRA_OUTBOX_SEND_THREADS`` threads (the drain's send pool).
- throughput: with no worker running, N orders move to ``awaiting_confirmation`` through
  ``order_transition`` (each commits its Notification and Message; the first commit publishes a
  drain to Redis, the others see it pending); then a real ``celery worker`` subprocess starts and
  drains that backlog (``messaging.services.dispatch``, batches of 50, each full batch waking the
  next drain). The rate is N over the time from the first provider call's start to the last
  acceptance (``MessageAttempt`` rows).
- latency: with that worker running, M more orders move at a steady pace below the throughput;
  p50/p99 of ``Message.sent_at`` − the ``OrderEvent.created_at`` of the status change.
- where the CPU goes per message (worker, PostgreSQL, fake, the rest), from /proc.

Then the drain's code runs in this process (no Celery), and the SQL of one full batch is listed.
"""

import argparse
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_PER_SECOND = 300
PROVIDER_PREFIX = "LIVRA_BENCH_TWILIO"
SENDER = "+15005550006"  # Twilio's test From number
STOP_TIMEOUT = 30.0
SETTLED = ("sent", "delivered", "read", "failed", "undeliverable", "unknown")

# The fake in a process of its own (no GIL shared with the bench or the worker): prints its base
# URL, then answers each "count" line with the create calls it got and the messages it accepted.
FAKE_SCRIPT = """
import os, sys
from tests.fakes.twilio import FakeTwilio
fake = FakeTwilio(os.environ["FAKE_ACCOUNT_SID"], os.environ["FAKE_AUTH_TOKEN"]).start()
print(fake.base_url, flush=True)
for line in sys.stdin:
    print(len(fake.create_calls), len(fake.sent), flush=True)
fake.stop()
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="backlog per pool (default 2000)")
    parser.add_argument(
        "--latency-messages", type=int, default=500, help="paced sends per pool (default 500)"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="latency pace, at most half the throughput (default 100/s)"
    )
    parser.add_argument("--pools", default="prefork:2,threads:8", help="pool:concurrency,... to measure")
    parser.add_argument("--probe-seconds", type=float, default=5.0, help="driving the fake alone (default 5)")
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        help="a Redis broker (default: $CELERY_BROKER_URL, else redis://127.0.0.1:6379/0)",
    )
    args = parser.parse_args()
    args.pools = [(name, int(count)) for name, count in (p.split(":") for p in args.pools.split(","))]
    return args


def configure_environment(args: argparse.Namespace) -> None:
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url or dj_database_url.parse(url)["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(
            "bench/dispatch.py measures PostgreSQL only: set DATABASE_URL=postgres://user@host:port/db "
            "(it creates and drops its own throwaway database on that server)."
        )
    if not args.broker_url.startswith(("redis://", "rediss://")):
        sys.exit("bench/dispatch.py needs a Redis broker: set CELERY_BROKER_URL=redis://host:port/db")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ["LOG_LEVEL"] = "WARNING"  # one INFO line per send is not what is measured
    os.environ["CELERY_BROKER_URL"] = args.broker_url
    # A queue of its own: no other worker sends for this database, and nothing of ours stays.
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"livra-dispatch-{os.getpid()}"


# --- the processes ---------------------------------------------------------------------------
class FakeTwilioProcess:
    def __init__(self):
        self.account_sid, self.auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
        env = {**os.environ, "FAKE_ACCOUNT_SID": self.account_sid, "FAKE_AUTH_TOKEN": self.auth_token}
        self._process = subprocess.Popen(
            [sys.executable, "-c", FAKE_SCRIPT],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.base_url = self._process.stdout.readline().decode().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError("the fake Twilio did not start")

    def env(self) -> dict[str, str]:
        return {
            f"{PROVIDER_PREFIX}_ACCOUNT_SID": self.account_sid,
            f"{PROVIDER_PREFIX}_AUTH_TOKEN": self.auth_token,
            f"{PROVIDER_PREFIX}_BASE_URL": self.base_url,
        }

    def creates(self) -> int:
        """Create calls received so far (each one accepted: the bench asks for no failure)."""
        self._process.stdin.write(b"count\n")
        self._process.stdin.flush()
        received, accepted = map(int, self._process.stdout.readline().split())
        return received if received == accepted else -1

    def cpu_seconds(self) -> float:
        return cpu_seconds(self._process.pid)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(STOP_TIMEOUT)


class WorkerProcess:
    def __init__(self, pool: str, concurrency: int, log_path: Path):
        from urllib.parse import quote

        from django.db import connection

        db = connection.settings_dict
        user = quote(db["USER"] or "", safe="") + (
            f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
        )
        port = f":{db['PORT']}" if db["PORT"] else ""
        database_url = f"postgres://{user}@{db['HOST'] or '127.0.0.1'}{port}/{db['NAME']}"
        queue = os.environ["CELERY_TASK_DEFAULT_QUEUE"]
        self.log_path = log_path
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", f"--queues={queue}"]
        command += [f"--pool={pool}", f"--concurrency={concurrency}", f"--hostname={queue}@localhost"]
        # Nothing to synchronise with: no cluster chatter on the broker during the run.
        command += ["--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": database_url},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        if self._process.poll() is not None:
            raise RuntimeError(f"the worker exited with {self._process.returncode}: see {self.log_path}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self._process.pid)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # warm shutdown: finishes the tasks in hand
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(STOP_TIMEOUT)


def cpu_seconds(root: int, reaped: bool = False) -> float:
    """User + system time of a process and its live children (prefork's pool), from /proc; with
    ``reaped``, also of the children it has waited for (PostgreSQL's finished backends)."""
    total, pids = 0.0, [root]
    while pids:
        pid = pids.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            for task in Path(f"/proc/{pid}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        times = stat[stat.rindex(")") + 2 :].split()[11 : 15 if reaped and pid == root else 13]
        total += sum(map(int, times)) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent not idle (whoever spent it), from /proc/stat."""
    times = list(map(int, Path("/proc/stat").read_text().split()[1:9]))  # user nice system idle iowait ...
    return (sum(times) - times[3] - times[4]) / os.sysconf("SC_CLK_TCK")


def postmaster_pid() -> int | None:
    """PostgreSQL's main process when the server runs on this machine (its CPU includes its backends')."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    try:
        if Path(f"/proc/{backend}/comm").read_text().strip() != "postgres":
            return None
        status = Path(f"/proc/{backend}/status").read_text()
    except FileNotFoundError:
        return None
    return int(status.split("PPid:")[1].split()[0])


def cpu_snapshot(worker: "WorkerProcess", fake: FakeTwilioProcess, postmaster: int | None) -> dict:
    return {
        "worker": worker.cpu_seconds(),
        "PostgreSQL (whole server)": cpu_seconds(postmaster, reaped=True) if postmaster else 0.0,
        "fake": fake.cpu_seconds(),
        "machine": machine_busy_seconds(),
        "at": time.monotonic(),
    }


def cpu_per_message(before: dict, after: dict, messages: int) -> dict:
    """CPU ms per message by process; "the rest" is this script, Redis and anyone else's work."""
    used = {name: (after[name] - before[name]) / messages * 1000 for name in before if name != "at"}
    used["the rest"] = used.pop("machine") - sum(used.values())
    busy = (after["machine"] - before["machine"]) / (after["at"] - before["at"]) / os.cpu_count()
    return {"ms": used, "busy": busy}


def forget_queue() -> None:
    """Delete the bench's queue, its bindings, and its worker's control queue."""
    import redis
    from django.conf import settings

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    client.delete(f"{queue}@localhost.celery.pidbox")
    for member in client.smembers("_kombu.binding.celery.pidbox"):
        if queue.encode() in member:
            client.srem("_kombu.binding.celery.pidbox", member)


# --- the data --------------------------------------------------------------------------------
def create_orders(label: str, count: int):
    """A store that texts through the fake (SMS only, no quiet hours) and ``count`` placed orders."""
    from django.db import connection

    from bench.fixtures import bulk_cod_orders
    from messaging.models import Channel, ChannelProvider, MessagingSettings
    from orders.models import Store

    store = Store.objects.create(name=f"Dispatch {label}", slug=f"dispatch-{label}")
    MessagingSettings.objects.update_or_create(
        store=store,
        defaults={"channel_order": [Channel.SMS], "quiet_hours_start": None, "quiet_hours_end": None},
    )
    provider = {"provider": "twilio", "sender": SENDER, "credentials_env_prefix": PROVIDER_PREFIX}
    ChannelProvider.objects.create(store=store, channel=Channel.SMS, **provider)
    orders = bulk_cod_orders(store, count, label, with_items=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return store, [order.pk for order in orders]


def request_confirmation(order_id: int) -> None:
    from orders.models import OrderEvent
    from orders.services import order_transition

    order_transition(order_id, "request_confirmation", source=OrderEvent.Source.SYSTEM)


def statuses(store) -> dict[str, int]:
    from django.db.models import Count

    from messaging.models import Message

    return dict(Message.objects.filter(order__store=store).values_list("status").annotate(n=Count("id")))


def wait_until(done, worker: WorkerProcess, timeout: float):
    deadline = time.monotonic() + timeout
    while not (result := done()) and time.monotonic() < deadline:
        worker.check_alive()
        time.sleep(0.1)
    return result


def settled(store, count: int):
    by_status = statuses(store)
    return by_status if sum(by_status.get(s, 0) for s in SETTLED) >= count else None


# --- the measurements --------------------------------------------------------------------------
def _drive_fake(seconds: float) -> tuple[int, float, float, float]:
    """Send through the adapter for ``seconds``: (sends, start, end, CPU seconds of this client)."""
    from messaging.providers import OutboundMessage, ProviderConfig, get_provider

    provider, config = get_provider("twilio"), ProviderConfig("twilio", SENDER, PROVIDER_PREFIX)
    outbound = OutboundMessage(
        message_id=0,
        channel="sms",
        to="+212600000001",
        sender=SENDER,
        body="Bonjour Client 1, merci pour votre commande #10001 chez Dispatch : 1 × Babouches. "
        "Vous paierez 249,00 MAD à la livraison. Répondez 1 pour confirmer ou 2 pour annuler.",
        status_callback_url="http://127.0.0.1:8000/webhooks/messaging/twilio/dispatch/status/",
    )
    provider.send(outbound, config)  # the SDK client and its session, untimed
    sent, start, cpu = 0, time.monotonic(), time.thread_time()  # monotonic: one clock for all processes
    while time.monotonic() - start < seconds:
        provider.send(outbound, config)
        sent += 1
    return sent, start, time.monotonic(), time.thread_time() - cpu


def _drive_fake_threads(seconds: float, threads: int) -> list[tuple[int, float, float, float]]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(_drive_fake, [seconds] * threads))


def fake_max_rate(fake: FakeTwilioProcess, pool: str, concurrency: int, seconds: float) -> dict:
    """The fake's accept rate with as many clients as the worker sends with (per process, the
    drain's send threads; prefork runs ``concurrency`` processes), and each request's CPU cost to
    the adapter and the fake."""
    import multiprocessing

    from django.conf import settings
    from django.db import connections

    threads = settings.LIVRA_OUTBOX_SEND_THREADS
    processes = concurrency if pool == "prefork" else 1
    fake_cpu = fake.cpu_seconds()
    connections.close_all()  # a forked child must not share this process's socket
    with multiprocessing.get_context("fork").Pool(processes) as workers:
        per_process = workers.starmap(_drive_fake_threads, [(seconds, threads)] * processes)
    results = [result for process in per_process for result in process]
    fake_cpu = fake.cpu_seconds() - fake_cpu
    sends = sum(r[0] for r in results)
    return {
        "clients": len(results),
        "fake_rate": sends / (max(r[2] for r in results) - min(r[1] for r in results)),
        "adapter_cpu_ms": sum(r[3] for r in results) / sends * 1000,
        "fake_cpu_ms": fake_cpu / (sends + len(results)) * 1000,
    }


def attempts(store) -> list[tuple]:
    """(status change, call start, acceptance) of every accepted attempt of the store's messages (an
    attempt's ``started_at`` is when its provider call started, not when its batch was claimed)."""
    from django.db.models import OuterRef, Subquery

    from messaging.models import MessageAttempt
    from orders.models import OrderEvent

    changed_at = OrderEvent.objects.filter(
        order_id=OuterRef("message__order_id"), transition="request_confirmation"
    ).values("created_at")[:1]
    return list(
        MessageAttempt.objects.filter(message__order__store=store, outcome="accepted")
        .annotate(changed_at=Subquery(changed_at))
        .values_list("changed_at", "started_at", "finished_at")
    )


def percentile_ms(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def measure_pool(
    args, pool: str, concurrency: int, fake: FakeTwilioProcess, log_dir: Path, postmaster
) -> dict:
    label = f"{pool}-{concurrency}"
    probe = fake_max_rate(fake, pool, concurrency, args.probe_seconds)
    store, order_ids = create_orders(f"{label}-backlog", args.messages)
    paced_store, paced_ids = create_orders(f"{label}-paced", args.latency_messages)
    t0 = time.perf_counter()
    for order_id in order_ids:
        request_confirmation(order_id)
    queue_rate = len(order_ids) / (time.perf_counter() - t0)

    creates_before = fake.creates()
    worker = WorkerProcess(pool, concurrency, log_dir / f"worker-{label}.log")
    try:
        # CPU from the first acceptance on: the worker's start-up (imports, Django) is not a send.
        first = wait_until(lambda: statuses(store).get("sent", 0), worker, timeout=120)
        cpu0 = cpu_snapshot(worker, fake, postmaster)
        by_status = wait_until(lambda: settled(store, args.messages), worker, 60 + args.messages / 10)
        if not by_status:
            raise RuntimeError(f"the backlog did not settle: {statuses(store)}; see {worker.log_path}")
        cpu1 = cpu_snapshot(worker, fake, postmaster)
        creates = fake.creates() - creates_before
        backlog = attempts(store)
        first_start, last_end = min(a[1] for a in backlog), max(a[2] for a in backlog)
        rate = len(backlog) / (last_end - first_start).total_seconds()

        pace = min(args.rate, rate / 2)
        started = time.perf_counter()
        for i, order_id in enumerate(paced_ids):
            time.sleep(max(0.0, started + i / pace - time.perf_counter()))
            request_confirmation(order_id)
        paced_rate = len(paced_ids) / (time.perf_counter() - started)
        paced_status = wait_until(lambda: settled(paced_store, args.latency_messages), worker, 120)
        if not paced_status:
            raise RuntimeError(f"the paced sends did not settle: {statuses(paced_store)}")
        cpu2 = cpu_snapshot(worker, fake, postmaster)
        paced_creates = fake.creates() - creates_before - creates
        paced = attempts(paced_store)
    finally:
        worker.stop()
    return {
        "pool": label,
        **probe,
        "queue_rate": queue_rate,
        "by_status": by_status,
        "creates": creates,
        "rate": rate,
        "seconds": (last_end - first_start).total_seconds(),
        "cpu": cpu_per_message(cpu0, cpu1, args.messages - first),
        "paced_rate": paced_rate,
        "paced_status": paced_status,
        "paced_creates": paced_creates,
        "paced_cpu": cpu_per_message(cpu1, cpu2, args.latency_messages),
        "latency": {
            "end to end": [(end - changed).total_seconds() for changed, _, end in paced],
            "pickup": [(start - changed).total_seconds() for changed, start, _ in paced],
            "send": [(end - start).total_seconds() for _, start, end in paced],
        },
    }


def in_process_drain(count: int) -> tuple[list[str], float, float]:
    """The drain's code in this process: the SQL of one full batch, then sends/s and CPU ms/send
    for ``count`` more messages drained batch after batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from messaging.services.dispatch import BATCH_SIZE, outbox_drain

    _, order_ids = create_orders("in-process", count + BATCH_SIZE)
    for order_id in order_ids:
        request_confirmation(order_id)
    # Their wake-ups (and the full batches' ones) wait, unconsumed, in the queue deleted at exit.
    with CaptureQueriesContext(connection) as captured:
        outbox_drain()
    wall, cpu, sent = time.perf_counter(), time.thread_time(), 0
    while batch := outbox_drain().accepted:
        sent += batch
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return [query["sql"] for query in captured.captured_queries], sent / wall, cpu / sent * 1000


# --- the report --------------------------------------------------------------------------------
def cpu_line(cpu: dict) -> str:
    spent = ", ".join(f"{name} {ms:.1f}" for name, ms in cpu["ms"].items())
    return f"CPU ms per message: {spent}; the {os.cpu_count()} CPUs were {cpu['busy']:.0%} busy"


def print_pool(args, r: dict) -> None:
    ok = r["by_status"] == {"sent": args.messages} and r["creates"] == args.messages
    paced_ok = (
        r["paced_status"] == {"sent": args.latency_messages} and r["paced_creates"] == args.latency_messages
    )
    lat = r["latency"]
    print(f"pool {r['pool']}")
    http_cores = TARGET_PER_SECOND * (r["adapter_cpu_ms"] + r["fake_cpu_ms"]) / 1000
    print(
        f"  the fake's max accept rate, {r['clients']} clients as the worker, adapter path: "
        f"{r['fake_rate']:.1f}/s; "
        f"CPU per send: adapter {r['adapter_cpu_ms']:.1f} ms + fake {r['fake_cpu_ms']:.1f} ms "
        f"(at {TARGET_PER_SECOND}/s: {http_cores:.2f} CPUs for the HTTP leg alone)"
    )
    print(f"  backlog queued through order_transition at {r['queue_rate']:.1f}/s with no worker running")
    print(
        f"  backlog of {args.messages}: {r['rate']:.1f} messages/s over {r['seconds']:.2f} s, "
        f"{r['rate'] / r['fake_rate']:.0%} of the fake's max"
    )
    print(f"    {cpu_line(r['cpu'])}")
    print(f"  statuses {r['by_status']}, the fake got {r['creates']} creates: {'OK' if ok else 'MISMATCH'}")
    print(
        f"  latency of {args.latency_messages} paced at {r['paced_rate']:.1f}/s: p50 "
        f"{percentile_ms(lat['end to end'], 50):.0f} ms, p99 {percentile_ms(lat['end to end'], 99):.0f} ms "
        f"(status change → call start p50/p99 {percentile_ms(lat['pickup'], 50):.0f}/"
        f"{percentile_ms(lat['pickup'], 99):.0f} ms; call start → acceptance "
        f"{percentile_ms(lat['send'], 50):.0f}/{percentile_ms(lat['send'], 99):.0f} ms)"
    )
    print(f"    {cpu_line(r['paced_cpu'])}")
    print(
        f"  statuses {r['paced_status']}, the fake got {r['paced_creates']} creates: "
        f"{'OK' if paced_ok else 'MISMATCH'}"
    )
    print(f"  target {TARGET_PER_SECOND}/s: {'met' if r['rate'] >= TARGET_PER_SECOND else 'NOT met'}")


def main() -> None:
    args = parse_args()
    configure_environment(args)

    import django

    django.setup()

    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases
    from kombu.utils.url import maybe_sanitize_url

    load_before = os.getloadavg()
    connection.settings_dict["TEST"]["NAME"] = f"livra_dispatch_{os.getpid()}"
    log_dir = Path(tempfile.mkdtemp(prefix="livra-dispatch-"))
    fake = None
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    try:
        fake = FakeTwilioProcess()
        os.environ.update(fake.env())  # the workers inherit them; the in-process sends read them
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version')")
            (server_version,) = cursor.fetchone()
        print(
            f"{os.cpu_count()} CPUs, PostgreSQL {server_version}, Python {platform.python_version()}, "
            f"Django {django.get_version()}; load average before the run {load_before[0]:.2f}"
        )
        broker = maybe_sanitize_url(settings.CELERY_BROKER_URL)
        print(f"throwaway database {connection.settings_dict['NAME']}, broker {broker}")
        print(f"worker DB_CONN_MAX_AGE={os.environ.get('DB_CONN_MAX_AGE', '0')}, worker logs in {log_dir}")
        print(flush=True)
        postmaster = postmaster_pid()
        for pool, concurrency in args.pools:
            print_pool(args, measure_pool(args, pool, concurrency, fake, log_dir, postmaster))
            print(flush=True)
        queries, local_rate, local_cpu = in_process_drain(1000)
        print(f"SQL statements of one drain of a full batch, BEGIN and COMMIT included: {len(queries)}")
        for sql in queries:
            print(f"    {sql[:110]}")
        print(
            f"the drain's code in this process (one thread and its send pool, no Celery): "
            f"{local_rate:.1f} sends/s, {local_cpu:.1f} ms CPU/send in the calling thread"
        )
    finally:
        if fake is not None:
            fake.stop()
        connection.close()
        teardown_databases(old_config, verbosity=0)
        forget_queue()
    print("throwaway database dropped, queue deleted")


if __name__ == "__main__":
    main()
