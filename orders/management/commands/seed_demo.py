"""``manage.py seed_demo``: the quick start's demo store, built through the real write path.

Creates the store "Atlas Souk" with ~50 Moroccan customers and orders in every status. Each order
is created at ``placed`` and walked to its status by ``orders.services.order_transition``, so it
has a real audit trail and messaging writes real outbox rows; their sends are queued after
commit and the Celery worker delivers them (through the sandbox provider) whenever it runs.

Deterministic (seeded random, times relative to now). Idempotent: if the demo store exists it
does nothing. Also creates the superuser ``admin`` unless it exists, with the password from
``LIVRA_ADMIN_PASSWORD`` or a generated one printed once.
"""

import logging
import os
import secrets
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from messaging.services.routing import channel_providers_choose_sandbox
from orders.demo import (
    ADMIN_PASSWORD_ENV,
    ADMIN_USERNAME,
    STORE_NAME,
    STORE_SLUG,
    CustomerPlan,
    DemoPlanner,
    OrderPlan,
    S,
)
from orders.models import Customer, Order, OrderEvent, OrderItem, Store
from orders.services import order_transition
from orders.transitions import PaymentMethod


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
            self.stdout.write(
                f'Demo store "{existing.name}" already exists ({existing.orders.count()} orders): '
                "nothing seeded."
            )
            return
        planner = DemoPlanner(now=timezone.now())
        customers = planner.customers()
        plans = planner.orders(len(customers))
        # One transaction: the demo appears whole or not at all. The messages' sends are queued
        # when it commits (on_commit), and wait in the broker until a worker takes them.
        # ~250 transitions would log a line each; below -v 2 the summary says enough.
        quiet = logging.WARNING if options["verbosity"] < 2 else logging.NOTSET
        with logger_level("orders.services", quiet), transaction.atomic():
            store = Store.objects.create(
                name=STORE_NAME,
                slug=STORE_SLUG,
                platform=Store.Platform.SHOPIFY,
                currency="MAD",
                default_phone_region="MA",
                time_zone="Africa/Casablanca",
            )
            # The demo's messages go to the sandbox phone, chosen like any store's provider.
            channel_providers_choose_sandbox(store)
            statuses = self.create_orders(store, customers, plans)
        summary = ", ".join(f"{status} {statuses[status]}" for status in S.values if statuses[status])
        self.stdout.write(
            self.style.SUCCESS(
                f'Seeded demo store "{STORE_NAME}": {len(customers)} customers, {len(plans)} orders '
                f"({summary})."
            )
        )
        self.stdout.write("Customer messages are queued; the Celery worker sends them through the sandbox.")

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

    def create_orders(
        self, store: Store, customer_specs: list[CustomerPlan], plans: list[OrderPlan]
    ) -> Counter:
        customers = [
            Customer.objects.create(
                store=store,
                name=spec.name,
                phone_raw=spec.phone_raw,
                email=spec.email,
                language=spec.language,
            )
            for spec in customer_specs
        ]
        first_order_at: dict[int, datetime] = {}
        statuses: Counter = Counter()
        for number, plan in enumerate(plans, start=1001):
            spec, customer = customer_specs[plan.customer_index], customers[plan.customer_index]
            total = sum((product.price * quantity for product, quantity in plan.items), Decimal("0"))
            order = Order.objects.create(
                store=store,
                external_id=str(5_812_300_000_000 + number * 7919),  # Shopify-sized ids
                number=f"#{number}",
                customer=customer,
                payment_method=plan.payment_method,
                currency=store.currency,
                total_amount=total,
                cod_amount=total if plan.payment_method == PaymentMethod.COD else Decimal("0"),
                shipping_address=spec.address,
                shipping_city=spec.city,
                notes=plan.notes,
                placed_at=plan.placed_at,
            )
            OrderItem.objects.bulk_create(
                OrderItem(order=order, sku=p.sku, title=p.title, quantity=q, unit_price=p.price)
                for p, q in plan.items
            )
            events = []
            for step in plan.steps:
                event = order_transition(
                    order.pk,
                    step.transition,
                    source=step.source,
                    reason=step.reason,
                    payload=step.payload,
                )
                # Demo history: date the event when the plan says it happened, not now.
                event.created_at = step.at
                events.append(event)
            OrderEvent.objects.bulk_update(events, ["created_at"])
            # Not the status (that only moves through order_transition): just its dates.
            Order.objects.filter(pk=order.pk).update(
                created_at=plan.placed_at + timedelta(seconds=40),
                status_changed_at=plan.steps[-1].at if plan.steps else None,
            )
            order.refresh_from_db(fields=["status"])
            if order.status != plan.target:
                raise CommandError(f"demo order {order.number} ended {order.status}, not {plan.target}")
            statuses[order.status] += 1
            first_order_at.setdefault(customer.pk, plan.placed_at)
        for customer in customers:
            customer.created_at = first_order_at.get(customer.pk, timezone.now())
        Customer.objects.bulk_update(customers, ["created_at"])
        return statuses
