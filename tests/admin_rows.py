"""A store with a row of every model Livra's admin shows: for the tests that go through the
admin page by page (stores kept apart, every page translated)."""

from dataclasses import dataclass

from automations.models import QueueEntry, Rule, RuleRevision, TeamAlert, Timer
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
from orders.transitions import OrderStatus
from tests.factories import StoreFactory, order_in_status


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
        QueueEntry: QueueEntry.objects.create(
            order=order, reason="no answer to the confirmation request in 2 h"
        ),
    }
    assert all(row is not None for row in rows.values()), rows
    return StoreRows(store, rows)
