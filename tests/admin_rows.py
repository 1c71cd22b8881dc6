"""A store with a row of every model Livra's admin shows: for the tests that go through the
admin page by page (stores kept apart, every page translated)."""

from dataclasses import dataclass

from automations.models import QueueEntry, Rule, RuleRevision, TeamAlert, Timer
from carriers.adapters import TrackingUpdate
from carriers.models import (
    CarrierAccount,
    CarrierCity,
    CityCorrection,
    DispatchBatch,
    RemittanceLine,
    RemittanceStatement,
    Shipment,
    StatusMapping,
    TrackingEvent,
)
from carriers.services import dispatch_batch_create, tracking_updates_record
from carriers.services.remittance import remittance_statement_import
from messaging.models import (
    ChannelProvider,
    Consent,
    InboundMessage,
    Message,
    MessageTemplate,
    MessagingSettings,
    Notification,
    ProviderWebhook,
)
from messaging.services.consent import consent_record
from messaging.services.routing import messaging_settings_for
from orders.models import Customer, Order, Store, StoreDelivery
from orders.transitions import OrderStatus, PaymentMethod
from tests.factories import CarrierAccountFactory, ShipmentFactory, StoreFactory, order_in_status


@dataclass
class StoreRows:
    store: Store
    rows: dict  # model → one row of this store


def store_with_rows(name: str, slug: str, **order_kwargs) -> StoreRows:
    """A store with one row of each model Livra's admin shows; ``order_kwargs`` go to the
    order's factory (its customer's name is "Client of <store>" unless they say otherwise)."""
    store = StoreFactory(name=name, slug=slug)
    order_kwargs.setdefault("customer__name", f"Client of {name}")
    order = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=store, **order_kwargs)
    rule = Rule.objects.filter(store=store).order_by("position", "pk").first()
    webhook = ProviderWebhook.objects.create(
        provider="sandbox", kind="inbound", store=store, dedup_key=f"inbound:{slug}", body="{}"
    )
    # A second order of the same customer, at the sandbox carrier and picked up. Prepaid: a COD
    # order confirmed would leave its confirmation timer dead, which the timers' list shows.
    order_only = {key: value for key, value in order_kwargs.items() if not key.startswith("customer__")}
    shipped = order_in_status(
        OrderStatus.CONFIRMED,
        store=store,
        customer=order.customer,
        payment_method=PaymentMethod.PREPAID,
        **order_only,
    )
    account = CarrierAccountFactory(store=store, name=f"sandbox-{slug}", pickup_address={})
    shipment = ShipmentFactory(account=account, order=shipped)
    update = TrackingUpdate(shipment.tracking_number, "PICKED_UP", event_id=f"{slug}-1")
    tracking_updates_record(account, [update], TrackingEvent.Source.SANDBOX)
    remittance, _ = remittance_statement_import(
        account, f"{slug}.csv", f"Tracking,Montant\r\n{shipment.tracking_number},249.00\r\n".encode()
    )
    city = CarrierCity.objects.create(
        carrier="sandbox", carrier_city_id=slug, name="الدار البيضاء", name_key=f"{slug}-casa"
    )
    rows = {
        Store: store,
        Customer: order.customer,
        Order: order,
        StoreDelivery: StoreDelivery.objects.create(
            store=store,
            platform="shopify",
            topic="orders/create",
            idempotency_key=f"event-{slug}",
            body=b"not json",
            status=StoreDelivery.Status.FAILED,
        ),
        Notification: Notification.objects.filter(order=order).first(),
        Message: Message.objects.filter(order=order).first(),
        MessageTemplate: MessageTemplate.objects.create(
            store=store, event="order_shipped", channel="sms", language="fr", body="Colis {order_number}"
        ),
        MessagingSettings: messaging_settings_for(store),
        ChannelProvider: ChannelProvider.objects.get(store=store, channel="sms"),
        Consent: consent_record(
            order.customer, "sms", Consent.Status.OPTED_IN, source=Consent.Source.CHECKOUT
        ),
        ProviderWebhook: webhook,
        InboundMessage: InboundMessage.objects.create(
            customer=order.customer,
            order=order,
            webhook=webhook,
            channel="sms",
            provider="sandbox",
            sender=order.customer.phone,
            text="Je ne comprends pas",
            intent=InboundMessage.Intent.OTHER,
        ),
        Rule: rule,
        RuleRevision: RuleRevision.objects.filter(rule=rule).first(),
        Timer: Timer.objects.filter(order=order).first(),
        TeamAlert: TeamAlert.objects.create(order=order, text=f"Order {order.number} needs a look"),
        CarrierAccount: account,
        # Asked, not run: a batch's page is its progress (no carrier is called here).
        DispatchBatch: dispatch_batch_create(account, [shipped, order], None),
        Shipment: shipment,
        StatusMapping: StatusMapping.objects.create(
            carrier="sandbox", account=account, raw_code=f"at_hub_{slug}", state="in_transit"
        ),
        TrackingEvent: TrackingEvent.objects.get(shipment=shipment),
        CarrierCity: city,
        RemittanceStatement: remittance,
        RemittanceLine: remittance.lines.get(),
        CityCorrection: CityCorrection.objects.create(
            store=store, carrier="sandbox", typed="الدار البيضا", typed_key=f"{slug}-casa", city=city
        ),
        QueueEntry: QueueEntry.objects.create(
            order=order, reason="no answer to the confirmation request in 2 h"
        ),
    }
    assert all(row is not None for row in rows.values()), rows
    return StoreRows(store, rows)
