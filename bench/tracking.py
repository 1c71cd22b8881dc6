"""How fast carrier news is applied from the store inbox, and what one poll sweep costs Livra, on PostgreSQL.

    DATABASE_URL=postgres://user@host:5432/anything .venv/bin/python bench/tracking.py \
        [--events 2000] [--shipments 100000] [--settled 900000]

The script creates a throwaway database (``livra_bench_<pid>``) next to the one DATABASE_URL names,
migrates it, runs, and drops it at exit: it never reads or writes the database in the URL. DEBUG is
off, logs at WARNING, the drain's and the messages' kicks go to kombu's in-memory broker (published,
never consumed: no worker runs, no server round trip).

1. Events applied from the inbox. ``--events`` COD orders of 249.00 MAD (one item each) are set
   "in_transit" in bulk, each with a shipment at a sandbox carrier account of a store whose
   customer messages go to the sandbox providers. Each parcel gets one OUT_FOR_DELIVERY report,
   signed as the sandbox carrier signs its pushes and kept through ``carrier_webhook_receive``
   (not timed). Then ``store_inbox_drain()`` runs in a loop until it finds nothing (timed): per
   event, the ``TrackingEvent`` row, the order's transition to out_for_delivery (``OrderEvent``,
   the customer's outbox message "keep 249.00 MAD ready" and its kick), the shipment, the poll
   reschedule and the delivery's outcome. Twice: one push per event, and pushes of 50 events each
   (the same number of events, other parcels). The floor: as many bare ``INSERT INTO
   carriers_trackingevent`` + ``UPDATE orders_order SET status`` pairs in autocommit (a commit
   each), on other parcels of the same tables. Statements are counted by a
   ``connection.execute_wrapper`` (savepoints included); round trips add each transaction's
   BEGIN and COMMIT. Target: 500 events/s applied.

2. One poll sweep. ``--shipments`` parcels in transit, due, at a Yalidine account pointing at
   ``tests.fakes.carrier_yalidine.FakeYalidine`` started in this process (quotas raised so it never
   answers 429; each parcel's history is one "Expédié" row that Livra has already kept, made up on
   request, so the fake answers at once and the sweep records nothing new: the steady state of a
   poll). Orders, parcels and their kept events are written set-based (``INSERT ... SELECT
   generate_series``), then ``VACUUM ANALYZE``. The sweep is ``account_poll(account,
   requests_budget=<enough>, sleep=no wait)`` called until it claims nothing: each call claims at
   most ``MAX_PER_SWEEP`` parcels (5,000), so 100,000 parcels take 20 calls, each asking the carrier
   in batches of 50 (Yalidine's ``/v1/histories`` size). ``YalidineAdapter.track`` is wrapped by a
   timer: Livra's own time is the sweep's wall time minus the time inside ``track`` (the HTTP
   round trip and the fake's work), per parcel. It runs first with the active parcels alone in the
   table, then again (the same parcels due again) after ``--settled`` settled parcels of the same
   account (``next_poll_at`` NULL, one kept "Livré" event each; they reuse the active parcels'
   orders, which the sweep never reads) are added: "100k table" and "1M table" side by side.
   Targets: Livra's own time at most 2 ms per parcel, and statements per batch that do not grow
   with the table.

Figures on the 2-CPU machine (2026-12-03, shared with other test runs, load average 1.3 at the
start; a run at load 4.3 gave 18 and 31 events/s, floor 430/s, and the same 4.06 round trips):

                          events  pushes  seconds  events/s  stmts/event  trips/event  CPU ms/event
  one push per event       2,000    2000    72.23        28         49.1         51.1         25.10
  pushes of 50 events      2,000      40    58.73        34         36.2         36.3         19.73
  bare INSERT + UPDATE     2,000       -     2.86       700            2            4          0.27
  (2,000 outbox messages and 2,000 orders moved per variant; target 500 events/s: NOT met.
  Each event is a customer-facing order_transition (rules, timers, consent, outbox), about half
  of its 49 statements, and ~25 ms of Django ORM CPU per event in this process.)

                                              100k table      1M table
  parcels polled / account_poll calls       100,000 / 20  100,000 / 20
  batches (carrier requests)                       2,000         2,000
  sweep wall time, s                                29.6          34.3
  inside adapter.track, s                            7.5           8.1
  Livra's own time, ms/parcel                      0.222         0.262   (target ≤ 2: met)
  round trips per batch (+BEGIN/COMMIT)             4.06          4.06   (constant: met)
  the claim's plan: Index Scan using shipment_poll_due at both sizes. Whole run 259 s.
"""

import argparse
import os
import platform
import re
import sys
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_EVENTS_PER_SECOND = 500
TARGET_OWN_MS_PER_PARCEL = 2.0
PUSH_BATCH = 50  # events per push in the batch variant
WARMUP_EVENTS = 100
WARMUP_PARCELS = 500
SANDBOX_PREFIX = "LIVRA_BENCH_SBX"
YALIDINE_PREFIX = "LIVRA_BENCH_YAL"
UPDATED_TABLE, READ_TABLE = re.compile(r'UPDATE\s+"?(\w+)'), re.compile(r'\b(?:FROM|INTO)\s+"?(\w+)')
HISTORY_STATUS, SETTLED_STATUS = "Expédié", "Livré"
# Yalidine's local time (Algiers) of every parcel's kept row: a day ago, so that no parcel is
# "silent for 30 days" and retired instead of polled.
HISTORY_DATE = (datetime.now(ZoneInfo("Africa/Algiers")) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per variant (default 2,000)")
    parser.add_argument("--shipments", type=int, default=100_000, help="due parcels (default 100,000)")
    parser.add_argument(
        "--settled",
        type=int,
        default=900_000,
        help="settled parcels added for the second sweep (default 900,000)",
    )
    args = parser.parse_args()
    if args.events < PUSH_BATCH or args.shipments < 1 or args.settled < 0:
        parser.error(f"--events must be at least {PUSH_BATCH}, --shipments positive, --settled not negative")
    return args


def configure_environment() -> None:
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url or dj_database_url.parse(url)["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(
            "bench/tracking.py measures PostgreSQL only: set DATABASE_URL=postgres://user@host:port/db "
            "(it creates and drops its own throwaway database on that server)."
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ["LOG_LEVEL"] = "WARNING"  # INFO is a line per delivery and per carrier call
    os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"livra-bench-{os.getpid()}"
    os.environ[f"{SANDBOX_PREFIX}_WEBHOOK_SECRET"] = "bench-sandbox-webhook-secret"


def sql(statement: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def sql_value(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


# --- counting --------------------------------------------------------------------------------
class SqlCounter:
    """Every statement Django runs (savepoints included) by kind, with the time waiting on each,
    and the transactions (their COMMIT or ROLLBACK, wrapped on the connection: not statements)."""

    def __init__(self):
        self.kinds: Counter[str] = Counter()
        self.kind_seconds: Counter[str] = Counter()
        self.statements = self.transactions = 0
        self.sql_seconds = self.commit_seconds = 0.0
        self.first_claim = None  # the first claiming statement, to EXPLAIN

    def __call__(self, execute, sql, params, many, context):
        verb = sql.lstrip().split(None, 1)[0].upper()
        match = (UPDATED_TABLE if verb == "UPDATE" else READ_TABLE).search(sql)
        kind = f"{verb} {match.group(1)}" if match else verb
        if verb == "UPDATE" and match and match.group(1) == "carriers_shipment":
            # The sweep's three: the retirement of silent parcels, the claim's lease, the reschedule.
            if "COALESCE" in sql:
                kind += " (retire)"
            elif "CASE" in sql:
                kind += " (reschedule)"
            elif '"next_poll_at" =' in sql:
                kind += " (claim's lease)"
        if "SKIP LOCKED" in sql:
            kind += " FOR UPDATE SKIP LOCKED"
            if match and match.group(1) == "carriers_shipment" and self.first_claim is None:
                self.first_claim = (sql, params)
        elif "FOR UPDATE" in sql:
            kind += " FOR UPDATE"
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.statements += 1
            self.sql_seconds += elapsed
            self.kinds[kind] += 1
            self.kind_seconds[kind] += elapsed

    def wrap_ending(self, original):
        def ending():
            started = time.perf_counter()
            try:
                return original()
            finally:
                self.commit_seconds += time.perf_counter() - started
                self.transactions += 1

        return ending

    @property
    def round_trips(self) -> int:
        return self.statements + 2 * self.transactions  # BEGIN and COMMIT are round trips too


@contextmanager
def counting():
    from django.db import connection

    counter = SqlCounter()
    connection.ensure_connection()
    connection._commit = counter.wrap_ending(connection._commit)
    connection._rollback = counter.wrap_ending(connection._rollback)
    try:
        with connection.execute_wrapper(counter):
            yield counter
    finally:
        del connection._commit, connection._rollback


# --- 1. events applied from the inbox ----------------------------------------------------------
def sandbox_parcels(account, count: int) -> list:
    """``count`` COD orders in transit with their sandbox shipments (last news a day ago)."""
    from django.utils import timezone

    from bench.fixtures import bulk_cod_orders
    from carriers.models import Shipment, TrackingState
    from orders.models import Order
    from orders.transitions import OrderStatus

    orders = bulk_cod_orders(account.store, count, "t", with_items=True)
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        status=OrderStatus.IN_TRANSIT, status_version=5
    )
    now = timezone.now()
    return Shipment.objects.bulk_create(
        Shipment(
            order=order,
            account=account,
            carrier=account.carrier,
            tracking_number=f"SBX{i:010d}",
            carrier_reference=order.number,
            state=TrackingState.IN_TRANSIT,
            reported_status="IN_TRANSIT",
            cod_amount=order.cod_amount,
            create_status=Shipment.CreateStatus.CREATED,
            source="carrier",
            last_event_at=now - timedelta(days=1),
            next_poll_at=now + timedelta(hours=6),
        )
        for i, order in enumerate(orders)
    )


def pushes_receive(account, shipments: list, per_push: int) -> int:
    """Sign and keep one OUT_FOR_DELIVERY report per parcel, ``per_push`` of them per push."""
    from django.utils import timezone

    from carriers.adapters import TrackingUpdate
    from carriers.adapters.sandbox import SIGNATURE_HEADER, SandboxCarrier, sign
    from carriers.services.webhooks import carrier_webhook_receive

    secret = os.environ[f"{SANDBOX_PREFIX}_WEBHOOK_SECRET"]
    sandbox, now, kept = SandboxCarrier(), timezone.now(), 0
    for start in range(0, len(shipments), per_push):
        updates = [
            TrackingUpdate(
                tracking_number=shipment.tracking_number,
                raw_code="OUT_FOR_DELIVERY",
                raw_text="With the courier",
                occurred_at=now,
                location="Casablanca hub",
                event_id=f"{shipment.tracking_number}-ofd",
            )
            for shipment in shipments[start : start + per_push]
        ]
        body = sandbox.webhook_body(updates)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
        kept += carrier_webhook_receive(account, headers, body)[1]
    return kept


def inbox_drain() -> tuple[int, float, float]:
    """Drain the store inbox until it finds nothing: (deliveries processed, seconds, CPU seconds)."""
    from orders.services.inbox import store_inbox_drain

    processed, cpu, started = 0, time.process_time(), time.perf_counter()
    while drained := store_inbox_drain():
        processed += drained
    return processed, time.perf_counter() - started, time.process_time() - cpu


def floor_pairs(shipments: list) -> float:
    """One bare event INSERT and one bare order UPDATE per parcel, autocommit: seconds."""
    from django.db import connection

    insert = (
        "INSERT INTO carriers_trackingevent (shipment_id, carrier, dedup_key, raw_code, raw_code_folded, "
        "raw_text, occurred_at, received_at, source, location, state, reason, mapped, applied, apply_note, "
        "raw) VALUES (%s, 'sandbox', %s, 'OUT_FOR_DELIVERY', 'out_for_delivery', 'With the courier', now(), "
        "now(), 'webhook', 'Casablanca hub', 'out_for_delivery', '', true, true, '', '{}')"
    )
    update = (
        "UPDATE orders_order SET status = 'out_for_delivery', status_version = status_version + 1 "
        "WHERE id = %s"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:  # Django's connection is in autocommit: a commit per statement
        for shipment in shipments:
            cursor.execute(insert, [shipment.pk, f"floor:{shipment.tracking_number}"])
            cursor.execute(update, [shipment.order_id])
    return time.perf_counter() - started


def events_bench(store, count: int) -> dict:
    from carriers.models import TrackingEvent
    from carriers.services.accounts import carrier_account_create
    from messaging.models import Message
    from orders.models import Order, StoreDelivery
    from orders.transitions import OrderStatus

    account = carrier_account_create(
        store=store, carrier="sandbox", name="Bench sandbox", env_prefix=SANDBOX_PREFIX
    )
    parcels = sandbox_parcels(account, WARMUP_EVENTS + 3 * count)  # one store: one call (phones)
    warm, rest = parcels[:WARMUP_EVENTS], parcels[WARMUP_EVENTS:]
    single, batched, floor = rest[:count], rest[count : 2 * count], rest[2 * count :]
    sql("VACUUM ANALYZE")

    # Warm up (connection, plan caches, the broker's producer, the floor's statements), untimed.
    pushes_receive(account, warm[: WARMUP_EVENTS // 2], 1)
    pushes_receive(account, warm[WARMUP_EVENTS // 2 :], 10)
    inbox_drain()
    floor_pairs(warm)

    rows = {}
    for label, shipments, per_push in (
        ("one push per event", single, 1),
        ("pushes of 50 events", batched, PUSH_BATCH),
    ):
        deliveries = pushes_receive(account, shipments, per_push)
        messages_before, events_before = Message.objects.count(), TrackingEvent.objects.count()
        with counting() as counter:
            processed, seconds, cpu = inbox_drain()
        order_ids = [shipment.order_id for shipment in shipments]
        rows[label] = {
            "events": TrackingEvent.objects.count() - events_before,
            "deliveries": deliveries,
            "processed": processed,
            "seconds": seconds,
            "cpu": cpu,
            "counter": counter,
            "messages": Message.objects.count() - messages_before,
            "moved": Order.objects.filter(pk__in=order_ids, status=OrderStatus.OUT_FOR_DELIVERY).count(),
            "not processed": StoreDelivery.objects.exclude(status=StoreDelivery.Status.PROCESSED).count(),
        }
    cpu = time.process_time()
    rows["bare INSERT + UPDATE"] = {"events": len(floor), "seconds": floor_pairs(floor)}
    rows["bare INSERT + UPDATE"]["cpu"] = time.process_time() - cpu
    return rows


def events_report(rows: dict, count: int) -> None:
    print(f"\n1. Events applied from the inbox: {count:,} per variant, OUT_FOR_DELIVERY on orders in transit")
    header = f"  {'':<22}{'events':>8}{'pushes':>8}{'seconds':>9}{'events/s':>10}{'stmts/event':>13}"
    print(f"{header}{'trips/event':>13}{'CPU ms/event':>14}{'outbox msgs':>13}{'orders moved':>14}")
    floor_rate = rows["bare INSERT + UPDATE"]["events"] / rows["bare INSERT + UPDATE"]["seconds"]
    for label, row in rows.items():
        rate = row["events"] / row["seconds"]
        counter = row.get("counter")
        stmts = f"{counter.statements / row['events']:.1f}" if counter else "2"
        trips = f"{counter.round_trips / row['events']:.1f}" if counter else "4"
        print(
            f"  {label:<22}{row['events']:>8,}{row.get('deliveries', '-'):>8}"
            f"{row['seconds']:>9.2f}{rate:>10.0f}"
            f"{stmts:>13}{trips:>13}{row['cpu'] / row['events'] * 1000:>14.2f}"
            f"{row.get('messages', '-'):>13}{row.get('moved', '-'):>14}"
        )
    for label, row in rows.items():
        if "counter" not in row:
            continue
        rate, counter = row["events"] / row["seconds"], row["counter"]
        print(
            f"  {label}: {rate / floor_rate:.1%} of the floor's rate; waiting on statements "
            f"{counter.sql_seconds / row['events'] * 1000:.2f} ms/event, on COMMITs "
            f"{counter.commit_seconds / row['events'] * 1000:.2f} ms/event; "
            f"deliveries left unprocessed: {row['not processed']}; "
            f"target {TARGET_EVENTS_PER_SECOND} events/s: "
            f"{'met' if rate >= TARGET_EVENTS_PER_SECOND else 'NOT met'}"
        )
    single = rows["one push per event"]["counter"]
    events = rows["one push per event"]["events"]
    kinds = [
        f"{n / events:.1f} {kind} ({single.kind_seconds[kind] / n * 1000:.2f} ms)"
        for kind, n in single.kinds.most_common()
    ]
    print("  statements per event, one push per event (count, mean wait):")
    for start in range(0, len(kinds), 3):
        print("    " + ", ".join(kinds[start : start + 3]))


# --- 2. the poll sweep -------------------------------------------------------------------------
def instant_yalidine():
    """FakeYalidine whose ``/v1/histories`` makes up each asked parcel's history (one row) on the spot:
    no list of 100,000 rows to scan per call. Everything else (auth, quotas, paging) is the fake's."""
    from tests.fakes.carrier_yalidine import FakeYalidine

    class InstantYalidine(FakeYalidine):
        def _route(self, request):
            if request.path.rstrip("/") == "/v1/histories" and request.method == "GET":
                rows = [history_row(tracking) for tracking in sorted(self._values(request, "tracking"))]
                return self._paginate(request, rows)
            return super()._route(request)

    fake = InstantYalidine()
    fake.limits = dict.fromkeys(fake.limits, 10**9)  # never a 429
    return fake


def history_row(tracking: str) -> dict:
    return {
        "date_status": HISTORY_DATE,
        "tracking": tracking,
        "status": HISTORY_STATUS,
        "reason": "",
        "center_id": 190201,
        "center_name": "Centre de Aïn Arnat",
        "wilaya_id": 19,
        "wilaya_name": "Sétif",
        "commune_id": 1902,
        "commune_name": "Aïn Arnat",
    }


def history_dedup_key(tracking: str) -> str:
    """The key Livra gives the fake's row for this parcel (through the adapter's own parsing)."""
    from carriers.adapters import TrackingUpdate
    from carriers.adapters.yalidine import _moment, raw_status
    from carriers.services.tracking import dedup_key

    row = history_row(tracking)
    return dedup_key(
        TrackingUpdate(
            tracking_number=tracking,
            raw_code=raw_status(row["status"], row["reason"]),
            occurred_at=_moment(row["date_status"]),
        )
    )


def yalidine_parcels(account, count: int, *, settled: bool = False) -> dict[str, float]:
    """Write parcels set-based: due ones with their orders, or settled ones on those orders.
    Each with one kept event. Seconds per step."""
    from carriers.adapters import fold
    from carriers.adapters.yalidine import _moment

    def moment(date: str) -> datetime:
        return _moment(date).astimezone(UTC)

    occurred = moment(HISTORY_DATE)
    params = {
        "store": account.store_id,
        "account": account.pk,
        "count": count,
        "occurred": occurred,
        "iso": _moment(HISTORY_DATE).isoformat(),  # as dedup_key writes the carrier's time
        "status": HISTORY_STATUS,
        "folded": fold(HISTORY_STATUS),
        "settled_status": SETTLED_STATUS,
        "settled_folded": fold(SETTLED_STATUS),
    }
    shipment_columns = (
        "order_id, account_id, carrier, tracking_number, tracking_url, carrier_reference, reported_status, "
        "state, reason, label_url, fee, cod_amount, create_status, create_error, attempts, last_event_at, "
        "next_poll_at, source, external_id, created_at, updated_at"
    )
    event_columns = (
        "shipment_id, carrier, dedup_key, raw_code, raw_code_folded, raw_text, occurred_at, received_at, "
        "source, location, state, reason, mapped, applied, apply_note, raw"
    )
    prefix = f"a{account.pk}-"
    if not settled:
        steps = {
            "customers": """
                INSERT INTO orders_customer (store_id, name, phone_raw, phone, email, language,
                                             preferred_channel, created_at, updated_at)
                SELECT %(store)s, 'Customer ' || i, '06' || lpad(i::text, 8, '0'),
                       '+2136' || lpad(i::text, 8, '0'), '', 'fr', '', now(), now()
                FROM generate_series(1, %(count)s) AS i""",
            "orders": f"""
                INSERT INTO orders_order (store_id, customer_id, external_id, number, payment_method,
                    currency, total_amount, cod_amount, shipping_address, shipping_city, notes, tags, status,
                    status_version, status_changed_at, placed_at, created_at, updated_at)
                SELECT %(store)s, c.id, '{prefix}' || c.id, '#{prefix}' || c.id, 'cod', 'DZD', 4900, 4900, '',
                       'Sétif', '', '[]', 'in_transit', 5, now(), now() - interval '3 days', now(), now()
                FROM orders_customer c WHERE c.store_id = %(store)s""",
            # Due 1 minute ago and earlier, spread, so that "oldest due first" has an order to follow.
            "due parcels": f"""
                INSERT INTO carriers_shipment ({shipment_columns})
                SELECT o.id, %(account)s, 'yalidine', 'yal-A' || o.id, '', o.number, %(status)s, 'in_transit',
                       '', '', 500, 4900, 'created', '', 0, %(occurred)s,
                       now() - interval '1 minute' - make_interval(secs => o.id %% 3600), 'carrier', '',
                       now(), now()
                FROM orders_order o WHERE o.store_id = %(store)s""",
            "their kept events": f"""
                INSERT INTO carriers_trackingevent ({event_columns})
                SELECT s.id, 'yalidine',
                       'sha256:' || encode(sha256(convert_to(s.tracking_number || '|' || %(status)s || '|'
                                                             || %(iso)s, 'UTF8')), 'hex'),
                       %(status)s, %(folded)s, '', %(occurred)s, %(occurred)s, 'poll', 'Centre de Aïn Arnat',
                       'in_transit', '', true, true, '', '{{}}'
                FROM carriers_shipment s WHERE s.account_id = %(account)s""",
        }
    else:
        params["first_order"], params["orders"] = (
            sql_value("SELECT min(id) FROM orders_order WHERE store_id = %s", [account.store_id]),
            sql_value("SELECT count(*) FROM orders_order WHERE store_id = %s", [account.store_id]),
        )
        steps = {
            "settled parcels": f"""
                INSERT INTO carriers_shipment ({shipment_columns})
                SELECT %(first_order)s + i %% %(orders)s, %(account)s, 'yalidine', 'yal-S' || i, '', '',
                       %(settled_status)s, 'delivered', '', '', 500, 4900, 'created', '', 0,
                       %(occurred)s, NULL, 'carrier', '', now() - interval '30 days', now()
                FROM generate_series(1, %(count)s) AS i""",
            "their kept events": f"""
                INSERT INTO carriers_trackingevent ({event_columns})
                SELECT s.id, 'yalidine',
                       'sha256:' || encode(sha256(convert_to(s.tracking_number || '|' || %(settled_status)s
                                                             || '|' || %(iso)s, 'UTF8')), 'hex'),
                       %(settled_status)s, %(settled_folded)s, '', %(occurred)s, %(occurred)s, 'poll', '',
                       'delivered', '', true, true, '', '{{}}'
                FROM carriers_shipment s WHERE s.account_id = %(account)s AND s.next_poll_at IS NULL""",
        }
    seconds = {}
    for name, statement in steps.items():
        started = time.perf_counter()
        sql(statement, params)
        seconds[name] = time.perf_counter() - started
    started = time.perf_counter()
    sql("VACUUM ANALYZE")
    seconds["vacuum analyze"] = time.perf_counter() - started
    return seconds


def parcels_due_again(account) -> None:
    """The due parcels as they were before the first sweep (due, never polled)."""
    sql(
        "UPDATE carriers_shipment SET last_polled_at = NULL, "
        "next_poll_at = now() - interval '1 minute' - make_interval(secs => order_id %% 3600) "
        "WHERE account_id = %s AND next_poll_at IS NOT NULL",
        [account.pk],
    )


@contextmanager
def timed_track():
    """Time spent inside ``YalidineAdapter.track``: the HTTP round trip and the fake's work."""
    from carriers.adapters.yalidine import YalidineAdapter

    original = YalidineAdapter.track
    timer = {"seconds": 0.0, "calls": 0}

    def track(self, tracking_numbers):
        started = time.perf_counter()
        try:
            return original(self, tracking_numbers)
        finally:
            timer["seconds"] += time.perf_counter() - started
            timer["calls"] += 1

    YalidineAdapter.track = track
    try:
        yield timer
    finally:
        YalidineAdapter.track = original


def sweep(account) -> dict:
    """``account_poll`` until it claims nothing (each call claims at most MAX_PER_SWEEP)."""
    from django.db import connection

    from carriers.services.polling import account_poll

    polls = []
    with counting() as counter, timed_track() as track:
        cpu, started = time.process_time(), time.perf_counter()
        while True:
            result = account_poll(account, requests_budget=10**6, sleep=lambda seconds: None)
            if result.error or not result.polled:
                break
            polls.append(result)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    plan = []
    if counter.first_claim:  # how PostgreSQL finds the due parcels (now that they are polled)
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {counter.first_claim[0]}", counter.first_claim[1])
            plan = [line.strip() for (line,) in cursor.fetchall() if "->" in line or not line.startswith(" ")]
    return {
        "polls": polls,
        "error": result.error,
        "seconds": seconds,
        "cpu": cpu,
        "track": track,
        "counter": counter,
        "plan": plan,
        "parcels": sum(poll.polled for poll in polls),
        "requests": sum(poll.requests for poll in polls),
        "events": sum(poll.events for poll in polls),
        "unknown": sum(len(poll.unknown_parcels) for poll in polls),
    }


def sweep_report(results: dict[str, dict]) -> None:
    labels = list(results)
    print("\n   " + " " * 46 + "".join(f"{label:>18}" for label in labels))

    def line(name: str, values) -> None:
        print(f"   {name:<46}" + "".join(f"{value:>18}" for value in values))

    rs = [results[label] for label in labels]
    line("shipments in the table", [f"{r['table']:,}" for r in rs])
    line("parcels polled", [f"{r['parcels']:,}" for r in rs])
    line("account_poll calls (≤ 5,000 each)", [f"{len(r['polls']):,}" for r in rs])
    line("batches (carrier requests)", [f"{r['requests']:,}" for r in rs])
    line("new events recorded", [f"{r['events']:,}" for r in rs])
    line("sweep wall time, s", [f"{r['seconds']:.1f}" for r in rs])
    line("inside adapter.track, s", [f"{r['track']['seconds']:.1f}" for r in rs])
    own = [(r["seconds"] - r["track"]["seconds"]) / r["parcels"] * 1000 for r in rs]
    line("Livra's own time, ms/parcel", [f"{value:.3f}" for value in own])
    line(
        "  waiting on statements, ms/parcel",
        [f"{r['counter'].sql_seconds / r['parcels'] * 1000:.3f}" for r in rs],
    )
    line(
        "  waiting on COMMITs, ms/parcel",
        [f"{r['counter'].commit_seconds / r['parcels'] * 1000:.3f}" for r in rs],
    )
    line("this process's CPU, ms/parcel", [f"{r['cpu'] / r['parcels'] * 1000:.3f}" for r in rs])
    line("statements per batch", [f"{r['counter'].statements / r['requests']:.2f}" for r in rs])
    line(
        "round trips per batch (+BEGIN/COMMIT)",
        [f"{r['counter'].round_trips / r['requests']:.2f}" for r in rs],
    )
    kinds = sorted(
        {kind for r in rs for kind in r["counter"].kinds}, key=lambda k: -rs[0]["counter"].kinds[k]
    )
    print("   statements per batch by kind (count, ms):")
    for kind in kinds:
        line(
            f"  {kind[:44]}",
            [
                f"{r['counter'].kinds[kind] / r['requests']:.2f}, "
                f"{r['counter'].kind_seconds[kind] / r['requests'] * 1000:.2f}"
                for r in rs
            ],
        )
    for label, r in results.items():
        plan = " / ".join(entry.split("  (cost")[0] for entry in r["plan"])
        print(f"   {label}: the claim's plan: {plan}")
    verdict = all(value <= TARGET_OWN_MS_PER_PARCEL for value in own)
    met = "met" if verdict else "NOT met"
    print(f"   target: Livra's own time ≤ {TARGET_OWN_MS_PER_PARCEL} ms/parcel: {met}")
    per_batch = [r["counter"].round_trips / r["requests"] for r in rs]
    flat = max(per_batch) - min(per_batch) < 0.5
    print(f"   target: round trips per batch the same at every table size: {'met' if flat else 'NOT met'} "
          f"({' vs '.join(f'{value:.2f}' for value in per_batch)})")  # fmt: skip


def poll_bench(args) -> dict[str, dict]:
    from carriers.services.accounts import carrier_account_create
    from orders.models import Store

    fake = instant_yalidine()
    fake.start()
    try:
        os.environ[f"{YALIDINE_PREFIX}_API_ID"] = fake.api_id
        os.environ[f"{YALIDINE_PREFIX}_API_TOKEN"] = fake.api_token
        os.environ[f"{YALIDINE_PREFIX}_BASE_URL"] = fake.api_url

        def account_with_parcels(name: str, count: int):
            store = Store.objects.create(name=f"Poll bench {name}", slug=f"poll-bench-{name}")
            account = carrier_account_create(
                store=store, carrier="yalidine", name=name, env_prefix=YALIDINE_PREFIX
            )
            return account, yalidine_parcels(account, count)

        warm, _ = account_with_parcels("warm-up", WARMUP_PARCELS)
        account, loaded = account_with_parcels("main", args.shipments)
        first = sql_value("SELECT min(order_id) FROM carriers_shipment WHERE account_id = %s", [account.pk])
        expected = history_dedup_key(f"yal-A{first}")
        if not sql_value("SELECT count(*) FROM carriers_trackingevent WHERE dedup_key = %s", [expected]):
            sys.exit("the kept events' keys are not the ones Livra computes: the sweep would record them all")
        print(f"\n2. Poll sweep: {args.shipments:,} due parcels at Yalidine "
              "(loopback fake, one kept history row each)")  # fmt: skip
        print(f"   loaded {args.shipments:,} due parcels in {sum(loaded.values()):.1f} s "
              f"({', '.join(f'{k} {v:.1f} s' for k, v in loaded.items())})")  # fmt: skip
        sweep(warm)  # warm-up: connection, plans, the adapter's session
        results = {}
        table = args.shipments
        results[f"{table // 1000:,}k table"] = {**sweep(account), "table": table + WARMUP_PARCELS}
        if args.settled:
            parcels_due_again(account)
            seconds = yalidine_parcels(account, args.settled, settled=True)
            print(f"   added {args.settled:,} settled parcels in {sum(seconds.values()):.1f} s "
                  f"({', '.join(f'{k} {v:.1f} s' for k, v in seconds.items())})")  # fmt: skip
            table += args.settled
            label = f"{table / 1e6:g}M table" if table >= 1_000_000 else f"{table // 1000:,}k table"
            results[label] = {**sweep(account), "table": table + WARMUP_PARCELS}
        for label, r in results.items():
            if not r["parcels"]:
                sys.exit(f"{label}: the sweep polled nothing ({r['error'] or 'no parcel was due'})")
            if r["error"] or r["unknown"]:
                print(
                    f"   {label}: stopped by a carrier error {r['error']!r}, unknown parcels {r['unknown']}"
                )
        return results
    finally:
        fake.stop()


def forget_published_kicks() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        queue = app.amqp.queues[app.conf.task_default_queue](conn.default_channel)
        queue.declare()
        queue.delete()


def main() -> None:
    args = parse_args()
    configure_environment()

    import django

    django.setup()

    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from messaging.services.routing import channel_providers_choose_sandbox
    from orders.models import Store

    source_db = connection.settings_dict["NAME"]
    bench_db = f"livra_bench_{os.getpid()}"
    connection.settings_dict["TEST"]["NAME"] = bench_db
    started = time.perf_counter()
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    try:
        with connection.cursor() as cursor:
            names = ("server_version", "shared_buffers", "synchronous_commit", "autovacuum")
            cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in names))
            server = ", ".join(f"{n}={v}" for n, v in zip(names, cursor.fetchone(), strict=True))
        print(f"PostgreSQL ({server}), Python {platform.python_version()}, Django {django.get_version()}, "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        print(f"throwaway database {bench_db} on the server of {source_db!r}, dropped at exit; "
              f"kicks to {os.environ['CELERY_BROKER_URL']} (never consumed)")  # fmt: skip
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"load average at the start (1, 5, 15 min): {load} (other processes share these CPUs)")
        store = Store.objects.create(name="Tracking bench", slug="tracking-bench")
        channel_providers_choose_sandbox(store)  # the out-for-delivery message is really queued
        events_report(events_bench(store, args.events), args.events)
        sweep_report(poll_bench(args))
    finally:
        teardown_databases(old_config, verbosity=0)
        forget_published_kicks()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\nwhole run: {time.perf_counter() - started:.0f} s; load average at the end (1, 5, 15 min): {load}"
    )


if __name__ == "__main__":
    main()
