"""``manage.py seed_demo``: the quick start's demo store, built through the real write path.

Creates the store "Atlas Souk" with ~50 Moroccan customers and orders in every status, played
over the last fortnight through Livra's own services on a simulated clock
(``orders.demo_history``): each order arrives through ``order_create``, the store's rules ask,
tell, remind and queue, the sandbox sends, delivers and reads, customers answer, carriers move
parcels, each at its own moment. The newest order is live: its confirmation request waits for
the Celery worker, which sends it through the sandbox when the demo starts. Then the confirmed
and processing COD orders (all but the newest of each) are sent to the sandbox carrier and
marked shipped: its walk moves those parcels while the demo runs (``carriers.demo``).

Deterministic (seeded random, times relative to now). Idempotent: if the demo store exists it
does nothing. Also creates the superuser ``admin`` unless it exists, with the password from
``LIVRA_ADMIN_PASSWORD`` or a generated one printed once.
"""

import logging
import os
import secrets
from collections import Counter
from contextlib import ExitStack, contextmanager

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from carriers.demo import demo_parcels_dispatch, demo_sandbox_account
from messaging.services.routing import channel_providers_choose_sandbox
from orders.demo import ADMIN_PASSWORD_ENV, ADMIN_USERNAME, STORE_NAME, STORE_SLUG, DemoPlanner, S
from orders.demo_history import DemoHistoryError, demo_history_play
from orders.models import Order, Store

# What the fortnight of history would log, a line per order, rule, message and receipt: below
# -v 2 the summary says enough.
QUIET_LOGGERS = ("orders", "messaging", "automations", "celery")


@contextmanager
def logger_level(name: str, level: int):
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


class Command(BaseCommand):
    help = (
        'Seed the demo store "Atlas Souk" (~50 Moroccan customers and orders in every status, walked '
        "through order_transition) and the superuser admin. Does nothing if the store exists."
    )
    requires_migrations_checks = True

    def handle(self, *args, **options):
        self.ensure_admin()
        existing = Store.objects.filter(slug=STORE_SLUG).first()
        if existing is not None:
            channel_providers_choose_sandbox(existing)  # a demo store from before providers were chosen
            demo_sandbox_account(existing)  # or from before the sandbox carrier
            self.stdout.write(
                f'Demo store "{existing.name}" already exists ({existing.orders.count()} orders): '
                "nothing seeded."
            )
            return
        planner = DemoPlanner(now=timezone.now())
        customers = planner.customers()
        plans = planner.orders(customers)
        quiet = logging.WARNING if options["verbosity"] < 2 else logging.NOTSET
        # One transaction: the demo appears whole or not at all. What the history leaves to the
        # worker (the live order's messages) is queued when it commits (on_commit).
        with ExitStack() as stack:
            for name in QUIET_LOGGERS:
                stack.enter_context(logger_level(name, quiet))
            stack.enter_context(transaction.atomic())
            try:
                orders = demo_history_play(
                    customers,
                    plans,
                    name=STORE_NAME,
                    slug=STORE_SLUG,
                    platform=Store.Platform.SHOPIFY,
                    currency="MAD",
                    default_phone_region="MA",
                    time_zone="Africa/Casablanca",
                )
            except DemoHistoryError as exc:
                raise CommandError(str(exc)) from exc
            for order, plan in zip(orders, plans, strict=True):
                if order.status != plan.target:
                    raise CommandError(f"demo order {order.number} ended {order.status}, not {plan.target}")
        # Parcels are created as at a real carrier: after the store is committed, outside any
        # transaction of ours.
        with ExitStack() as stack:
            for name in (*QUIET_LOGGERS, "carriers"):
                stack.enter_context(logger_level(name, quiet))
            parcels = demo_parcels_dispatch(orders[0].store)
        statuses = Counter(Order.objects.filter(store=orders[0].store).values_list("status", flat=True))
        summary = ", ".join(f"{status} {statuses[status]}" for status in S.values if statuses[status])
        self.stdout.write(
            self.style.SUCCESS(
                f'Seeded demo store "{STORE_NAME}": {len(customers)} customers, {len(plans)} orders '
                f"({summary}), with a fortnight of history."
            )
        )
        self.stdout.write(
            f"{len(parcels)} confirmed orders were sent to the sandbox carrier: its walk (celery-beat) "
            "moves their parcels while the demo runs, and the orders follow."
        )
        live = [order.number for order, plan in zip(orders, plans, strict=True) if plan.live]
        self.stdout.write(
            f"Order {', '.join(live)} was placed just now: the Celery worker sends its confirmation "
            "request through the sandbox, to be answered on the sandbox phone."
        )

    def ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(
                f'Superuser "{ADMIN_USERNAME}" already exists; its password was left unchanged.'
            )
            return
        password = os.environ.get(ADMIN_PASSWORD_ENV, "")
        generated = "" if password else secrets.token_urlsafe(12)
        User.objects.create_superuser(
            ADMIN_USERNAME, email="admin@example.com", password=password or generated
        )
        if generated:
            # ./livra and .ci/quickstart_check.py read this line: keep its wording.
            self.stdout.write(f'Superuser "{ADMIN_USERNAME}" created with password: {generated}')
            self.stdout.write(f"  (shown only this once; set {ADMIN_PASSWORD_ENV} to choose it yourself)")
        else:
            self.stdout.write(
                f'Superuser "{ADMIN_USERNAME}" created with the password from {ADMIN_PASSWORD_ENV}.'
            )
