"""The demo's parcels: its store's account at the sandbox carrier, and confirmed orders sent there.

``manage.py seed_demo`` calls ``demo_parcels_dispatch`` once the demo store is committed: the
confirmed and processing COD orders, but the newest of each (left for an agent to dispatch from
admin), get their parcels at the sandbox carrier and are marked shipped with their carrier and
tracking number. While the demo
runs, the sandbox carrier's walk (celery-beat) moves those parcels and posts their events to
Livra's carrier webhook, so the orders move on and their customers are told.

The walk signs its posts with the secret in ``LIVRA_SANDBOX_WEBHOOK_SECRET`` (the account's
``<prefix>_WEBHOOK_SECRET``): ``./livra demo`` sets one for its three processes when it is unset.
"""

import logging

from django.db import transaction

from carriers.models import CarrierAccount, Shipment
from carriers.services import carrier_account_create, sandbox_walk_settings_for, shipment_create
from orders.demo import TRACKING_URL
from orders.models import Order, OrderEvent, Store
from orders.services import order_transition
from orders.transitions import OrderStatus, PaymentMethod

logger = logging.getLogger(__name__)

ACCOUNT_NAME = "Sandbox carrier"
ENV_PREFIX = "LIVRA_SANDBOX"  # its webhook secret: LIVRA_SANDBOX_WEBHOOK_SECRET
CARRIER_NAME = "Sandbox"  # as the customer reads it in the "shipped" message
PICKUP_ADDRESS = {"address": "Zone industrielle Sidi Maârouf", "city": "Casablanca"}
# More failures and returns than a real store sees, so that a short demo shows them too.
DEMO_RATES = {"failed_attempt_share": 30, "refused_share": 15, "returned_after_failures_share": 40}


def demo_sandbox_account(store: Store) -> CarrierAccount:
    """The demo store's account at the sandbox carrier, with the demo's walk rates."""
    account = CarrierAccount.objects.filter(store=store, carrier="sandbox", name=ACCOUNT_NAME).first()
    if account is None:
        with transaction.atomic():
            account = carrier_account_create(
                store=store,
                carrier="sandbox",
                name=ACCOUNT_NAME,
                env_prefix=ENV_PREFIX,
                pickup_address=PICKUP_ADDRESS,
            )
            walk_settings = sandbox_walk_settings_for(account)
            for name, value in DEMO_RATES.items():
                setattr(walk_settings, name, value)
            walk_settings.save()
    return account


def demo_parcels_dispatch(store: Store) -> list[Shipment]:
    """Send the store's confirmed and processing COD orders (all but the newest of each) to the
    sandbox carrier, shipped.

    Call it outside any transaction: each parcel is created as at a real carrier.
    """
    account = demo_sandbox_account(store)
    waiting = [
        order
        for status in (OrderStatus.CONFIRMED, OrderStatus.PROCESSING)
        for order in Order.objects.filter(store=store, status=status, payment_method=PaymentMethod.COD)
        .select_related("customer")
        .order_by("-placed_at")[1:]
    ]
    shipments = []
    for order in waiting:
        shipment = shipment_create(order, account)
        if shipment.create_status != Shipment.CreateStatus.CREATED:
            logger.warning("demo parcel not created order_id=%s error=%s", order.pk, shipment.create_error)
            continue
        tracking_url = TRACKING_URL.format(carrier="sandbox", number=shipment.tracking_number)
        Shipment.objects.filter(pk=shipment.pk).update(tracking_url=tracking_url)
        order_transition(
            order,
            "ship",
            source=OrderEvent.Source.STORE,
            payload={
                "carrier": CARRIER_NAME,
                "tracking_number": shipment.tracking_number,
                "tracking_url": tracking_url,
            },
            idempotency_key=f"demo-ship:{shipment.pk}",
        )
        shipments.append(shipment)
    return shipments
