"""How many order status changes per second go through ``order_transition`` on PostgreSQL.

    DATABASE_URL=postgres://user@host:5432/anything .venv/bin/python bench/transitions.py \
        [--orders N] [--seconds S] [--broker-url memory://localhost/]

The script creates a throwaway database (``livra_bench_<pid>``) next to the one DATABASE_URL names,
migrates it, runs, and drops it at exit: it never reads or writes the database in the URL.

What it measures, in one run, on one connection, in one table:

- the service: COD orders walked through real transitions with
  ``orders.services.order_transition``, one call per move. Each call is its own transaction:
  ``SELECT ... FOR UPDATE`` of the order, the FSM transition (which fires messaging's receiver:
  an outbox ``Message`` row and an on-commit kick for customer-facing moves), the order UPDATE,
  the ``OrderEvent`` INSERT and COMMIT, then the kick itself: ``message_send_task.delay()``.
  The broker is kombu's in-memory transport by default, so the kick is a real publish
  (routing, serialising, handing the message to the transport) without a server round trip
  and without a worker running the sends. ``--broker-url redis://...`` measures it with one.
- the floor: the same number of moves as bare ``UPDATE orders_order SET status=%s,
  status_version=status_version+1 WHERE id=%s`` statements in autocommit, one per move, on
  other orders of the same table. Both pay one commit per move; the ratio is what the lock,
  the audit row, the outbox row and the kick cost on top of it.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Placed → delivered the long way: 7 moves, 5 of which the customer hears about.
WALK = (
    "request_confirmation",
    "confirm",
    "start_processing",
    "ship",
    "mark_in_transit",
    "mark_out_for_delivery",
    "deliver",
)
WARMUP_ORDERS = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000, help="orders to walk (default 1000)")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="stop the service phase after this long (default 30)"
    )
    parser.add_argument(
        "--broker-url",
        default="memory://localhost/",
        help="where the on-commit kicks are published (default: in-process memory, no server, no worker)",
    )
    return parser.parse_args()


def configure_environment(args: argparse.Namespace) -> None:
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url or dj_database_url.parse(url)["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(
            "bench/transitions.py measures PostgreSQL only: set DATABASE_URL=postgres://user@host:port/db "
            "(it creates and drops its own throwaway database on that server)."
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    # INFO would print one line per transition; production pays for its log lines, this does not.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CELERY_BROKER_URL"] = args.broker_url
    # A queue of its own, so a real broker's workers never pick up sends for a dropped database.
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"livra-bench-{os.getpid()}"


def create_orders(count: int, prefix: str) -> list[int]:
    from bench.fixtures import bulk_cod_orders
    from messaging.services.routing import channel_providers_choose_sandbox
    from orders.models import Store

    store = Store.objects.create(name=f"Bench {prefix}", slug=f"bench-{prefix}")
    channel_providers_choose_sandbox(store)  # the moves that tell the customer queue real messages
    return [order.pk for order in bulk_cod_orders(store, count, prefix)]


def queries_per_transition(order_id: int) -> dict[str, int]:
    """SQL statements of one call per move (Django counts BEGIN and COMMIT too)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.models import OrderEvent
    from orders.services import order_transition

    counts = {}
    for name in WALK:
        with CaptureQueriesContext(connection) as captured:
            order_transition(order_id, name, source=OrderEvent.Source.SYSTEM)
        counts[name] = len(captured)
    return counts


def run_service(order_ids: list[int], seconds: float) -> list[float]:
    from orders.models import OrderEvent
    from orders.services import order_transition

    latencies: list[float] = []
    started = time.perf_counter()
    for order_id in order_ids:
        for name in WALK:
            t0 = time.perf_counter()
            order_transition(order_id, name, source=OrderEvent.Source.SYSTEM)
            latencies.append(time.perf_counter() - t0)
        if time.perf_counter() - started > seconds:
            break
    return latencies


def run_floor(order_ids: list[int], moves: int) -> list[float]:
    from django.db import connection

    from orders.models import Order
    from orders.transitions import TRANSITIONS_BY_NAME

    targets = [str(TRANSITIONS_BY_NAME[name].target) for name in WALK]
    sql = f"UPDATE {Order._meta.db_table} SET status = %s, status_version = status_version + 1 WHERE id = %s"
    latencies: list[float] = []
    with connection.cursor() as cursor:  # Django's connection is in autocommit: one commit per statement
        for order_id in order_ids:
            for status in targets:
                if len(latencies) == moves:
                    return latencies
                t0 = time.perf_counter()
                cursor.execute(sql, [status, order_id])
                latencies.append(time.perf_counter() - t0)
    return latencies


def forget_published_kicks() -> None:
    """Delete the bench's queue, so that a real broker keeps none of its never-consumed messages."""
    from config.celery import app

    with app.connection_for_write() as conn:
        # Declared again so that this connection knows the queue's bindings and deletes them too.
        queue = app.amqp.queues[app.conf.task_default_queue](conn.default_channel)
        queue.declare()
        queue.delete()


def percentile_ms(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1] * 1000


def main() -> None:
    args = parse_args()
    configure_environment(args)

    import django

    django.setup()

    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from automations.services.defaults import DEFAULT_RULES
    from orders.transitions import TRANSITIONS_BY_NAME

    # The walk's moves whose new status a default rule answers with a message (the walk is COD's).
    told = {
        rule["status"]
        for rule in DEFAULT_RULES
        if rule["trigger"] == "entered_status" and any(act["type"] == "notify" for act in rule["actions"])
    }
    customer_facing_moves = {name for name in WALK if TRANSITIONS_BY_NAME[name].target in told}
    from messaging.models import Message

    source_db = connection.settings_dict["NAME"]
    bench_db = f"livra_bench_{os.getpid()}"
    connection.settings_dict["TEST"]["NAME"] = bench_db
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version'), current_setting('synchronous_commit')")
            server_version, synchronous_commit = cursor.fetchone()

        warmup = create_orders(WARMUP_ORDERS, "w")
        service_orders = create_orders(args.orders, "s")
        floor_orders = create_orders(args.orders, "f")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

        # Warm up both paths (connection, plan caches, the broker's producer), untimed.
        queries = queries_per_transition(warmup[0])
        run_service(warmup[1:], seconds=float("inf"))
        run_floor(warmup, moves=len(warmup) * len(WALK))
        messages_before = Message.objects.count()

        cpu0 = time.process_time()
        service = run_service(service_orders, args.seconds)
        cpu1 = time.process_time()
        floor = run_floor(floor_orders, moves=len(service))
        cpu2 = time.process_time()
        messages = Message.objects.count() - messages_before
    finally:
        teardown_databases(old_config, verbosity=0)
        forget_published_kicks()

    service_rate = len(service) / sum(service)
    floor_rate = len(floor) / sum(floor)
    customer_facing = sum(name in customer_facing_moves for name in WALK)
    with_message = sorted({n for name, n in queries.items() if name in customer_facing_moves})
    without_message = sorted({n for name, n in queries.items() if name not in customer_facing_moves})
    rows = [
        ("order_transition", service, service_rate, cpu1 - cpu0),
        ("bare UPDATE (floor)", floor, floor_rate, cpu2 - cpu1),
    ]

    print(f"PostgreSQL {server_version} (synchronous_commit={synchronous_commit}), Python "
          f"{platform.python_version()}, Django {django.get_version()}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"throwaway database {bench_db} on the server of {source_db!r}, dropped at exit")
    print(f"walk: {' → '.join(WALK)} ({len(WALK)} moves, {customer_facing} write an outbox message)")
    print(f"broker for the on-commit kick: {settings.CELERY_BROKER_URL} (published, never consumed)")
    print(
        f"SQL statements per transition, BEGIN and COMMIT included: {'/'.join(map(str, without_message))} "
        f"without an outbox message, {'/'.join(map(str, with_message))} with one"
    )
    print(f"outbox messages written in the timed run: {messages}")
    print()
    # "client CPU": time this Python process spent computing (Django, psycopg, kombu) rather than
    # waiting for PostgreSQL; the rest of each move is round trips and the server's work.
    header = f"{'':<22}{'moves':>8}{'seconds':>10}{'per second':>13}{'p50 ms':>9}{'p99 ms':>9}"
    print(f"{header}{'client CPU ms/move':>21}")
    for label, latencies, rate, cpu in rows:
        print(
            f"{label:<22}{len(latencies):>8}{sum(latencies):>10.2f}{rate:>13.1f}"
            f"{percentile_ms(latencies, 50):>9.3f}{percentile_ms(latencies, 99):>9.3f}"
            f"{cpu / len(latencies) * 1000:>21.3f}"
        )
    print()
    print(
        f"ratio: the service does {service_rate / floor_rate:.1%} of the floor's moves per second "
        f"(each move takes {floor_rate / service_rate:.1f}× as long)"
    )


if __name__ == "__main__":
    main()
