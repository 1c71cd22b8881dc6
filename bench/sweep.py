"""How long the timer sweep takes to fire 100,000 due timers among 1,000,000 orders on PostgreSQL.

    DATABASE_URL=postgres://user@host:5432/anything .venv/bin/python bench/sweep.py \
        [--orders 1000000] [--timers 100000] [--batch-size 500] [--scenario fire|moved-on|both] \
        [--small-scale 0.1] [--profile-timers 2000]

It creates a throwaway database (``livra_sweep_<pid>``) on the server DATABASE_URL names, migrates
it, and drops it at exit. One store is made through the ORM (its default rules come from the
post_save receiver); everything else is written set-based (``INSERT ... SELECT generate_series``):

- the orders, one customer each, in a COD store's mix of statuses (most delivered, cancelled,
  returned or in flight), one ``OrderEvent`` each (their last status change), and the timers
  their past left behind: a fired reminder and a dead 24 h cancel per order that went through
  confirmation; the orders still awaiting confirmation have their 24 h cancel pending, not due.
- scenario ``fire``: ``--timers`` orders in ``awaiting_confirmation``, each with a pending timer
  of the default rule "cod-queue" due in the past (its action: one ``QueueEntry`` and one
  ``OrderEvent``); all of them fire.
- ``--rule cod-reminder`` arms the reminder's timers instead (its action: a message to the
  customer, through messaging's routing and outbox, one order per transaction).
- scenario ``moved-on``: as many due "cod-queue" timers for orders that have since moved on (their
  status_version differs): the sweep retires them set-based and fires nothing.

Each scale is loaded, ``VACUUM ANALYZE``d (this server may run without autovacuum), then
``automations.services.sweep.timers_sweep`` runs in this process, DEBUG off, its SQL counted by a
``connection.execute_wrapper`` (BEGIN/COMMIT counted apart). A smaller scale (``--small-scale``
of both counts) runs first so the statements per batch can be compared. Last, ``--profile-timers``
more timers fire under cProfile: where the time of one timer goes. Target: 100,000 timers in
under 60 s, and statements per batch that do not grow with the number of orders.
"""

import argparse
import cProfile
import os
import platform
import pstats
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS, TARGET_TIMERS = 60.0, 100_000
FIRE_RULE, REMINDER_RULE, CANCEL_RULE = "cod-queue", "cod-reminder", "cod-cancel-unconfirmed"
# The orders not awaiting confirmation: (status, status_version, percent). Prepaid orders skip
# confirmation, so theirs are one lower; close enough for what the sweep reads.
# fmt: off
STATUS_MIX = (
    ("delivered", 7, 56), ("cancelled", 2, 14), ("returned", 9, 6), ("in_transit", 5, 6), ("confirmed", 2, 4),
    ("processing", 3, 3), ("shipped", 4, 3), ("out_for_delivery", 6, 2), ("delivery_failed", 7, 2),
    ("rto_initiated", 8, 2), ("refunded", 8, 1), ("placed", 0, 1),
)
# fmt: on
CITIES = ["Casablanca", "Rabat", "Marrakech", "Fès", "Tanger", "Agadir", "Meknès", "Oujda"]
UPDATED_TABLE, READ_TABLE = re.compile(r'UPDATE\s+"(\w+)"'), re.compile(r'\b(?:FROM|INTO)\s+"(\w+)"')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders (default 1,000,000)")
    parser.add_argument("--timers", type=int, default=100_000, help="due timers (default 100,000)")
    parser.add_argument("--batch-size", type=int, default=500, help="timers_sweep's (default 500)")
    parser.add_argument("--scenario", choices=("fire", "moved-on", "both"), default="both")
    parser.add_argument("--small-scale", type=float, default=0.1, help="run first, 0 for none (default 0.1)")
    parser.add_argument("--profile-timers", type=int, default=2000, help="fired under cProfile, 0 for none")
    parser.add_argument(
        "--rule",
        choices=(FIRE_RULE, REMINDER_RULE),
        default=FIRE_RULE,
        help="the default rule whose timers fire: cod-queue (a queue entry: fires a batch at a time, "
        "the default) or cod-reminder (a message to the customer: one order per transaction)",
    )
    args = parser.parse_args()
    if not 0 < args.timers <= args.orders // 2:
        parser.error("--timers must be positive and at most half of --orders")
    return args


def configure_environment() -> None:
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url or dj_database_url.parse(url)["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(
            "bench/sweep.py measures PostgreSQL only: set DATABASE_URL=postgres://user@host:port/db "
            "(it creates and drops its own throwaway database on that server)."
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ["LOG_LEVEL"] = "WARNING"  # one INFO line per fired rule is not what is measured
    os.environ["CELERY_BROKER_URL"] = "memory://localhost/"  # nothing here publishes; never a server


# --- the data --------------------------------------------------------------------------------
def sql(statement: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def load(store, rules: dict, orders: int, awaiting: int, armed_rule: str) -> dict[str, float]:
    """Empty the tables, then write the orders and their past; seconds per step."""
    step = orders // awaiting  # every step-th order awaits confirmation, spread over the table
    mix = [(status, version) for status, version, percent in STATUS_MIX for _ in range(percent)]
    params = {"store": store.pk, "orders": orders, "step": step, "awaiting": awaiting, "cities": CITIES}
    params |= {"statuses": [status for status, _ in mix], "versions": [version for _, version in mix]}
    params |= {"reminder": rules[REMINDER_RULE], "cancel": rules[CANCEL_RULE]}
    # The rule the bench arms has no history timer (one per order, rule and status entry).
    params["history"] = [rules[key] for key in (REMINDER_RULE, CANCEL_RULE) if key != armed_rule]
    steps = {
        "truncate": "TRUNCATE orders_customer, orders_order, orders_orderevent, automations_timer, "
        "automations_queueentry, automations_sweeprun RESTART IDENTITY CASCADE",
        "customers": """
            INSERT INTO orders_customer (store_id, name, phone_raw, phone, email, language,
                                         preferred_channel, created_at, updated_at)
            SELECT %(store)s, 'Customer ' || i, '06' || lpad(i::text, 8, '0'),
                   '+2126' || lpad(i::text, 8, '0'), '', 'fr', '', now(), now()
            FROM generate_series(1, %(orders)s) AS i""",
        # RESTART IDENTITY above: customer i has id i, so order i belongs to customer i.
        "orders": """
            INSERT INTO orders_order (store_id, customer_id, external_id, number, payment_method, currency,
                total_amount, cod_amount, shipping_address, shipping_city, notes, tags, status,
                status_version, status_changed_at, placed_at, created_at, updated_at)
            SELECT %(store)s, i, 'b-' || i, '#' || i, pay, 'MAD', amount,
                   CASE WHEN pay = 'cod' THEN amount ELSE 0 END, '', (%(cities)s::text[])[1 + i %% 8], '',
                   '[]', status, version, placed + interval '10 minutes', placed, placed, placed
            FROM (
                SELECT i, 99 + (i * 37) %% 1400 AS amount,
                       -- placed 2 h 5 min to 3 h 5 min ago: their 2 h timer is due, their 24 h one is not
                       CASE WHEN waits
                            THEN now() - interval '125 minutes' - make_interval(secs => i %% 3600)
                            ELSE now() - interval '1 day' - make_interval(secs => (%(orders)s - i) * 30.0)
                       END AS placed,
                       CASE WHEN waits THEN 'cod' WHEN i %% 7 = 0 THEN 'prepaid' ELSE 'cod' END AS pay,
                       CASE WHEN waits THEN 'awaiting_confirmation'
                            ELSE (%(statuses)s::text[])[1 + bucket] END AS status,
                       CASE WHEN waits THEN 1 ELSE (%(versions)s::int[])[1 + bucket] END AS version
                FROM (SELECT i, i %% %(step)s = 0 AND i / %(step)s <= %(awaiting)s AS waits,
                             (i * 7919) %% 100 AS bucket  -- a scattered status for the others
                      FROM generate_series(1, %(orders)s::bigint) AS i) AS numbered
            ) AS o""",
        "events": """
            INSERT INTO orders_orderevent (order_id, type, transition, from_status, to_status, status_version,
                                           source, reason, payload, created_at)
            SELECT id, 'status_changed', '', '', status, status_version, 'store', '', '{}', status_changed_at
            FROM orders_order""",
        # A reminder that fired and a 24 h cancel that died (or waits, not yet due) per order that
        # went through confirmation.
        "history timers": """
            INSERT INTO automations_timer (order_id, rule_id, status, status_version, due_at, state,
                                           fired_at, outcome, created_at)
            SELECT o.id, r.rule, 'awaiting_confirmation', 1, o.placed_at + r.delay,
                   CASE WHEN r.rule = %(reminder)s THEN 'fired'
                        WHEN o.status = 'awaiting_confirmation' THEN 'pending' ELSE 'dead' END,
                   CASE WHEN r.rule = %(reminder)s THEN o.placed_at + r.delay END, '', o.placed_at
            FROM orders_order o
            CROSS JOIN (VALUES (%(reminder)s, interval '30 minutes'), (%(cancel)s, interval '1 day'))
                AS r (rule, delay)
            WHERE o.payment_method = 'cod' AND o.status_version >= 1 AND r.rule = ANY(%(history)s)""",
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


def arm(scenario: str, rule_id: int, count: int) -> int:
    """``count`` pending timers of the "cod-queue" rule, due 5 to 65 min ago. For ``fire``,
    on orders awaiting confirmation; for ``moved-on``, on orders that have left that status since."""
    if scenario == "fire":  # due when the rule says: 2 h after the order entered the status
        orders = (
            "SELECT id, status_version, placed_at + interval '2 hours' AS due FROM orders_order "
            "WHERE status = 'awaiting_confirmation'"
        )
    else:
        orders = (
            "SELECT id, status_version - 1 AS status_version, "
            "now() - interval '5 minutes' - make_interval(secs => id %% 3600) AS due "
            "FROM orders_order WHERE status NOT IN ('awaiting_confirmation', 'placed')"
        )
    armed = sql(
        f"""
        INSERT INTO automations_timer (order_id, rule_id, status, status_version, due_at, state, outcome,
                                       created_at)
        SELECT id, %s, 'awaiting_confirmation', status_version, due, 'pending', '', now()
        FROM ({orders} ORDER BY id LIMIT %s) AS chosen""",
        [rule_id, count],
    )
    sql("ANALYZE automations_timer")
    return armed


def disarm(rule_id: int) -> None:
    """Forget what a scenario left (its timers, queue entries and their events)."""
    sql("DELETE FROM automations_timer WHERE rule_id = %s", [rule_id])
    sql("DELETE FROM orders_orderevent WHERE starts_with(type, 'automation_')")
    sql("DELETE FROM automations_queueentry")
    sql("TRUNCATE messaging_notification CASCADE")  # what reminders queued for the customers
    sql("VACUUM ANALYZE automations_timer")
    sql("VACUUM ANALYZE orders_orderevent")
    sql("VACUUM ANALYZE automations_queueentry")


# --- measuring -------------------------------------------------------------------------------
class SqlCounter:
    """Every statement Django runs (execute_wrapper), and the commits and rollbacks (wrapped on the
    connection, since they are not statements), with the time spent waiting on each. A statement
    that claims timers opens a new batch."""

    def __init__(self):
        self.kinds: Counter[str] = Counter()
        self.statements = self.transactions = 0
        self.sql_seconds = self.commit_seconds = self.claim_seconds = 0.0
        self.batches: list[list] = []  # [statements + BEGIN/COMMIT, start time] per batch
        self.claim = None  # the first claiming statement and its parameters, to EXPLAIN

    def __call__(self, execute, sql, params, many, context):
        verb = sql.lstrip().split(None, 1)[0].upper()
        table = m.group(1) if (m := (UPDATED_TABLE if verb == "UPDATE" else READ_TABLE).search(sql)) else ""
        locking = " FOR UPDATE" if "FOR UPDATE" in sql else ""
        claiming = locking and table == "automations_timer" and "SKIP LOCKED" in sql
        if claiming:
            self.batches.append([0, time.perf_counter()])
            self.claim = self.claim or (sql, params)
        self.kinds[f"{verb} {table}{locking}".replace("  ", " ")] += 1
        self.statements += 1
        if self.batches:
            self.batches[-1][0] += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.sql_seconds += time.perf_counter() - started
            self.claim_seconds += (time.perf_counter() - started) if claiming else 0.0

    def wrap_ending(self, original):
        def ending():
            started = time.perf_counter()
            try:
                return original()
            finally:
                self.commit_seconds += time.perf_counter() - started
                self.transactions += 1
                if self.batches:
                    self.batches[-1][0] += 2  # its BEGIN and its COMMIT (or ROLLBACK)

        return ending


def sweep(batch_size: int) -> dict:
    from django.db import connections

    from automations.services.sweep import timers_sweep

    db = connections["default"]
    counter = SqlCounter()
    db._commit, db._rollback = counter.wrap_ending(db._commit), counter.wrap_ending(db._rollback)
    cpu, started = time.process_time(), time.perf_counter()
    try:
        with db.execute_wrapper(counter):
            run = timers_sweep(batch_size)
    finally:
        del db._commit, db._rollback
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    ends = [start for _, start in counter.batches[1:]] + [started + seconds]
    full = [(n, end - start) for (n, start), end in zip(counter.batches, ends, strict=True)]
    full = full[: (run.fired + run.skipped + run.errors) // batch_size]  # the last may be partial
    plan = []
    if counter.claim:  # how PostgreSQL finds due timers (the plan; the timers are fired by now)
        with db.cursor() as cursor:
            cursor.execute(f"EXPLAIN {counter.claim[0]}", counter.claim[1])
            plan = [line.strip() for (line,) in cursor.fetchall() if "->" in line or not line.startswith(" ")]
    return {"run": run, "seconds": seconds, "cpu": cpu, "counter": counter, "full": full, "plan": plan}


def profile(batch_size: int, count: int, rule_id: int) -> pstats.Stats:
    from automations.services.sweep import timers_sweep

    arm("fire", rule_id, count)
    profiler = cProfile.Profile()
    profiler.runcall(timers_sweep, batch_size)
    return pstats.Stats(profiler)


# --- printing --------------------------------------------------------------------------------
def report(label: str, result: dict, batch_size: int) -> dict:
    run, seconds, counter = result["run"], result["seconds"], result["counter"]
    done = run.fired + run.skipped + run.errors
    round_trips = counter.statements + 2 * counter.transactions
    per_batch = [n for n, _ in result["full"]]
    batch_seconds = [s for _, s in result["full"]]
    print(f"  {label}: {seconds:.1f} s for {done:,} due timers, {done / seconds:,.0f} timers/s")
    print(f"    fired {run.fired:,}, skipped {run.skipped:,}, errors {run.errors:,}")
    print(
        f"    SQL: {counter.statements:,} statements + {counter.transactions:,} BEGIN/COMMIT pairs = "
        f"{round_trips:,} round trips; {counter.statements / done * 1000:,.0f} statements "
        f"({round_trips / done * 1000:,.0f} with BEGIN/COMMIT) per 1,000 timers"
        + (f", {round_trips / run.fired * 1000:,.0f} per 1,000 fired" if run.fired else "")
    )
    if per_batch:
        print(
            f"    per full batch of {batch_size}: {min(per_batch):,}–{max(per_batch):,} round trips "
            f"({len(per_batch)} batches); batch time first {batch_seconds[0] * 1000:.0f} ms, median "
            f"{statistics.median(batch_seconds) * 1000:.0f} ms, last {batch_seconds[-1] * 1000:.0f} ms"
        )
    plan = " / ".join(line.split("  (cost")[0] for line in result["plan"])
    print(f"    claiming statements: {counter.claim_seconds:.1f} s in all; their plan: {plan}")
    rest = seconds - counter.sql_seconds - counter.commit_seconds
    print(
        f"    wall time: {counter.sql_seconds:.1f} s waiting on statements, {counter.commit_seconds:.1f} s "
        f"on COMMITs, {rest:.1f} s in Python (this process's CPU: {result['cpu']:.1f} s)"
    )
    print("    statements per 1,000 timers:")
    kinds = [f"{n / done * 1000:,.0f} {kind}" for kind, n in counter.kinds.most_common()]
    for start in range(0, len(kinds), 4):
        print("      " + ", ".join(kinds[start : start + 4]))
    target = TARGET_SECONDS * done / TARGET_TIMERS
    print(f"    target {target:.1f} s for {done:,} ({TARGET_TIMERS / TARGET_SECONDS:,.0f}/s): "
          f"{'met' if seconds <= target else 'NOT met'}")  # fmt: skip
    spread = f"{min(per_batch):,}–{max(per_batch):,}" if per_batch else "no full batch"
    return {"per_batch": spread, "seconds": seconds}


def print_profile(stats: pstats.Stats, count: int) -> None:
    entries = stats.stats  # {(file, line, function): (primitive calls, calls, tottime, cumtime, callers)}

    def table(keys, title: str) -> None:
        print(f"  {title}\n    {'calls':>9} {'own ms/timer':>13} {'cum ms/timer':>13}  function")
        for path, line, function in keys:
            _, calls, own, cumulative, _ = entries[(path, line, function)]
            where = function if path == "~" else f"{path.replace(str(ROOT) + '/', '')}:{line}({function})"
            print(f"    {calls:>9,} {own / count * 1000:>13.3f} {cumulative / count * 1000:>13.3f}  {where}")

    by_own = sorted(entries, key=lambda k: entries[k][2], reverse=True)[:15]
    livra = [
        k
        for k in entries
        if k[0].startswith(str(ROOT)) and not k[0].startswith((sys.prefix, str(Path(__file__).resolve())))
    ]
    by_cumulative = sorted(livra, key=lambda k: entries[k][3], reverse=True)[:15]
    print(f"cProfile of timers_sweep firing {count:,} timers ({stats.total_tt:.2f} s under the profiler)")
    table(by_own, "by own time (top 15)")
    table(by_cumulative, "Livra's functions by cumulative time (top 15)")


def main() -> None:
    args = parse_args()
    configure_environment()

    import django

    django.setup()

    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from automations.models import Rule
    from messaging.services.routing import channel_providers_choose_sandbox
    from orders.models import Store

    source_db = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"livra_sweep_{os.getpid()}"
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    scales = [(args.orders, args.timers)]
    if args.small_scale:
        small = (int(args.orders * args.small_scale), max(1, int(args.timers * args.small_scale)))
        scales.insert(0, small)
    scenarios = ("fire", "moved-on") if args.scenario == "both" else (args.scenario,)
    summary: dict[tuple, dict] = {}
    try:
        with connection.cursor() as cursor:
            settings = ("server_version", "shared_buffers", "synchronous_commit", "autovacuum")
            cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in settings))
            values = dict(zip(settings, cursor.fetchone(), strict=True))
        server = ", ".join(f"{name}={value}" for name, value in values.items())
        print(f"PostgreSQL ({server}), Python {platform.python_version()}, Django {django.get_version()}, "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        print(f"throwaway database {connection.settings_dict['NAME']} on the server of {source_db!r}")
        store = Store.objects.create(name="Sweep bench", slug="sweep-bench")
        channel_providers_choose_sandbox(store)  # --rule cod-reminder queues real messages
        rules = dict(Rule.objects.filter(store=store).values_list("key", "pk"))
        fire_rule = rules[args.rule]
        for orders, timers in scales:
            print(f"\n{orders:,} orders, {timers:,} due timers, batches of {args.batch_size}")
            seconds = load(store, rules, orders, timers, args.rule)
            steps = ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items())
            print(f"  loaded in {sum(seconds.values()):.1f} s ({steps})")
            for scenario in scenarios:
                armed = arm(scenario, fire_rule, timers)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT state, count(*) FROM automations_timer GROUP BY state ORDER BY 1")
                    table = ", ".join(f"{state} {n:,}" for state, n in cursor.fetchall())
                print(f"  timers table: {table} ({armed:,} armed due)")
                result = sweep(args.batch_size)
                summary[(scenario, orders)] = report(scenario, result, args.batch_size)
                disarm(fire_rule)
        if args.profile_timers and "fire" in scenarios:
            print()
            print_profile(profile(args.batch_size, args.profile_timers, fire_rule), args.profile_timers)
    finally:
        connection.close()
        teardown_databases(old_config, verbosity=0)
    print("\nround trips per full batch (BEGIN/COMMIT included), by number of orders:")
    for scenario in scenarios:
        cells = [f"{orders:,} orders: {summary[(scenario, orders)]['per_batch']}" for orders, _ in scales]
        print(f"  {scenario:<9} " + "   ".join(cells))
    if full := summary.get(("fire", args.orders)):
        projected = full["seconds"] * TARGET_TIMERS / args.timers
        print(f"fire at {TARGET_TIMERS:,} timers: {projected:.0f} s (target {TARGET_SECONDS:.0f} s)")
    print("throwaway database dropped")


if __name__ == "__main__":
    main()
