"""`./livra demo`'s parcels: the seeded confirmed orders are sent to the sandbox carrier, shipped."""

import random
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from carriers.demo import ACCOUNT_NAME
from carriers.models import CarrierAccount, SandboxParcel, Shipment
from carriers.services.sandbox_walk import sandbox_parcels_step
from messaging.models import Message
from messaging.services.dispatch import outbox_drain
from orders.models import Order
from orders.transitions import OrderStatus, PaymentMethod

pytestmark = pytest.mark.django_db

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The demo seeded once for the module; every test runs in a savepoint inside."""
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS), transaction.atomic():
        out = StringIO()
        call_command("seed_demo", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def demo_shipments():
    return Shipment.objects.filter(account__name=ACCOUNT_NAME).select_related("order")


def test_the_demo_store_has_an_account_at_the_sandbox_carrier_signed_with_the_launchers_secret(seeded):
    account = CarrierAccount.objects.get(name=ACCOUNT_NAME)

    assert (account.store.slug, account.carrier) == ("atlas-souk", "sandbox")
    assert account.webhook_secret_variable == "LIVRA_SANDBOX_WEBHOOK_SECRET"
    assert account.sandbox_walk_settings.minutes_between_steps == 1


def test_confirmed_and_processing_cod_orders_but_the_newest_are_sent_to_the_sandbox_carrier(seeded):
    shipments = list(demo_shipments())

    assert len(shipments) >= 3
    assert "confirmed orders were sent to the sandbox carrier" in seeded
    for shipment in shipments:
        assert shipment.create_status == Shipment.CreateStatus.CREATED
        assert shipment.tracking_number.startswith("SBX")
        assert SandboxParcel.objects.filter(tracking_number=shipment.tracking_number).exists()
        assert shipment.order.payment_method == PaymentMethod.COD
    # The newest confirmed and processing orders are left for an agent to dispatch from admin.
    waiting = Order.objects.filter(status__in=[OrderStatus.CONFIRMED, OrderStatus.PROCESSING])
    assert {order.status for order in waiting} == {OrderStatus.CONFIRMED, OrderStatus.PROCESSING}


def test_each_order_sent_is_shipped_with_its_carrier_and_tracking_number_and_its_customer_told(seeded):
    for shipment in demo_shipments():
        order = shipment.order
        shipped = order.events.get(type="shipped", payload__tracking_number=shipment.tracking_number)
        assert order.status == OrderStatus.SHIPPED
        assert shipped.payload["carrier"] == "Sandbox"
        assert shipment.tracking_number in shipped.payload["tracking_url"] == shipment.tracking_url
        [message] = Message.objects.filter(order=order, event="order_shipped")
        assert message.status == Message.Status.QUEUED  # the worker sends it as the demo starts
    # As the worker does, when they are due: at once by day, when quiet hours end if seeded at night.
    messages = Message.objects.filter(order__in=[shipment.order for shipment in demo_shipments()])
    due = max([timezone.now(), *(message.next_attempt_at for message in messages if message.next_attempt_at)])
    with time_machine.travel(due, tick=False):
        outbox_drain()
    for shipment in demo_shipments():
        [message] = Message.objects.filter(order=shipment.order, event="order_shipped")
        assert message.status != Message.Status.FAILED
        assert "Sandbox" in message.body and shipment.tracking_number in message.body


def test_while_the_demo_runs_the_walk_moves_its_parcels(seeded):
    parcels = SandboxParcel.objects.filter(account__name=ACCOUNT_NAME)
    rng = random.Random(3)

    for _ in range(20):
        due = parcels.exclude(next_step_at=None).order_by("-next_step_at").first()
        if due is None:
            break
        sandbox_parcels_step(due.next_step_at, rng)

    endings = {parcel.events.order_by("-sequence").first().raw_code for parcel in parcels}
    assert endings <= {"DELIVERED", "RETURNED", "LOST"}
