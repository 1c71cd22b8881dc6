"""Routing: which channels a notification tries, in which order, through which provider, and when
quiet hours hold it back."""

import datetime
from zoneinfo import ZoneInfo

import pytest

from messaging.models import Channel, ChannelProvider, Consent, MessagingSettings, Notification
from messaging.services.consent import consent_record
from messaging.services.outbox import notification_create
from messaging.services.routing import (
    channel_provider_for,
    channel_providers_choose_sandbox,
    messaging_settings_for,
    quiet_hours_end,
    route_channels,
)
from tests.factories import CustomerFactory, OrderFactory, StoreFactory
from tests.fakes.scripted_provider import use_scripted_provider

pytestmark = pytest.mark.django_db

WHATSAPP, SMS, EMAIL = Channel.WHATSAPP, Channel.SMS, Channel.EMAIL
CASABLANCA = ZoneInfo("Africa/Casablanca")
TRANSACTIONAL = "transactional"


def route(customer) -> list[str]:
    return route_channels(customer, messaging_settings_for(customer.store), TRANSACTIONAL)


def casablanca(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    # June 2025: Morocco is on UTC+1 (no Ramadan change of hour).
    return datetime.datetime(2025, 6, day, hour, minute, tzinfo=CASABLANCA)


# --- order of channels ----------------------------------------------------------------------
def test_without_a_preference_the_store_channel_order_is_followed():
    customer = CustomerFactory()
    MessagingSettings.objects.create(store=customer.store, channel_order=[SMS, EMAIL, WHATSAPP])

    assert route(customer) == [SMS, EMAIL, WHATSAPP]


def test_the_default_order_is_whatsapp_then_sms_then_email():
    assert route(CustomerFactory()) == [WHATSAPP, SMS, EMAIL]


def test_the_customer_preferred_channel_comes_first_then_the_store_order():
    customer = CustomerFactory(preferred_channel=EMAIL)

    assert route(customer) == [EMAIL, WHATSAPP, SMS]


def test_a_preferred_channel_the_store_does_not_use_is_not_tried():
    customer = CustomerFactory(preferred_channel=EMAIL)
    MessagingSettings.objects.create(store=customer.store, channel_order=[WHATSAPP, SMS])

    assert route(customer) == [WHATSAPP, SMS]


# --- contact points -------------------------------------------------------------------------
def test_a_customer_without_a_phone_is_only_reached_by_email():
    assert route(CustomerFactory(phone_raw="")) == [EMAIL]


def test_a_customer_with_an_invalid_phone_gets_neither_whatsapp_nor_sms():
    customer = CustomerFactory(phone_raw="12345")

    assert customer.phone == ""
    assert route(customer) == [EMAIL]


def test_a_customer_without_an_email_address_gets_no_email():
    assert route(CustomerFactory(email="")) == [WHATSAPP, SMS]


def test_a_customer_with_no_contact_point_gets_a_notification_with_no_channel():
    order = OrderFactory(customer__phone_raw="", customer__email="")

    notification = notification_create(order, event="order_confirmed", key="k")

    assert notification.status == Notification.Status.NO_CHANNEL
    assert notification.channels == []
    assert not notification.messages.exists()


# --- consent ----------------------------------------------------------------------------------
def test_a_channel_the_customer_opted_out_of_is_skipped_from_the_start(django_capture_on_commit_callbacks):
    order = OrderFactory()
    use_scripted_provider(order.store)
    consent_record(order.customer, WHATSAPP, Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY)

    with django_capture_on_commit_callbacks(execute=True):
        notification = notification_create(order, event="confirmation_requested", key="k")

    assert notification.channels == [SMS, EMAIL]
    assert list(notification.messages.values_list("channel", flat=True)) == [SMS]


def test_under_the_explicit_policy_only_opted_in_channels_are_routed():
    customer = CustomerFactory()
    MessagingSettings.objects.create(
        store=customer.store, transactional_policy=MessagingSettings.TransactionalPolicy.EXPLICIT
    )
    consent_record(customer, SMS, Consent.Status.OPTED_IN, source=Consent.Source.CHECKOUT)

    assert route(customer) == [SMS]


# --- providers ------------------------------------------------------------------------------
def test_the_store_configured_provider_sends_on_its_channel():
    store = StoreFactory(providers=False)
    ChannelProvider.objects.create(store=store, channel=SMS, provider="twilio", sender="+212500000000")

    provider = channel_provider_for(store, SMS)

    assert (provider.provider, provider.sender) == ("twilio", "+212500000000")


def test_a_channel_without_an_enabled_provider_has_none_not_the_sandbox():
    store = StoreFactory(providers=False)
    ChannelProvider.objects.create(store=store, channel=SMS, provider="twilio", enabled=False)

    assert channel_provider_for(store, SMS) is None
    assert channel_provider_for(store, EMAIL) is None


def test_a_store_without_providers_routes_nothing_and_says_why():
    # given a store that chose no provider (DEBUG is off in tests, as in production)
    order = OrderFactory(store=StoreFactory(providers=False))

    # when a notification is made
    notification = notification_create(order, event="order_confirmed", key="k1")

    # then no message is queued, and the notification says why
    assert notification.status == Notification.Status.NO_PROVIDER
    assert notification.channels == []
    assert notification.routing_note == "no provider configured for whatsapp, sms, email"
    assert not order.messages.exists()


def test_only_the_channels_with_a_provider_are_routed_and_the_others_are_named():
    store = StoreFactory(providers=False)
    ChannelProvider.objects.create(store=store, channel=SMS, provider="twilio", sender="+212500000000")
    order = OrderFactory(store=store)

    notification = notification_create(order, event="order_confirmed", key="k1")

    assert notification.channels == [SMS]
    assert notification.routing_note == "no provider configured for whatsapp, email"
    assert [(m.channel, m.provider) for m in order.messages.all()] == [(SMS, "twilio")]


def test_a_customer_reachable_only_where_no_provider_is_set_is_not_a_no_channel_case():
    store = StoreFactory(providers=False)
    ChannelProvider.objects.create(store=store, channel=EMAIL, provider="smtp")
    order = OrderFactory(store=store, customer__email="")

    notification = notification_create(order, event="order_confirmed", key="k1")

    assert notification.status == Notification.Status.NO_PROVIDER
    assert notification.routing_note == "no provider configured for whatsapp, sms"


def test_the_sandbox_is_used_where_the_store_chose_it():
    store = StoreFactory(providers=False)
    channel_providers_choose_sandbox(store)
    order = OrderFactory(store=store)

    notification = notification_create(order, event="order_confirmed", key="k1")

    assert notification.routing_note == ""
    assert [(m.channel, m.provider) for m in order.messages.all()] == [(WHATSAPP, "sandbox")]


def test_choosing_the_sandbox_keeps_the_providers_a_store_chose():
    store = StoreFactory(providers=False)
    ChannelProvider.objects.create(store=store, channel=SMS, provider="twilio")

    channel_providers_choose_sandbox(store)

    chosen = dict(ChannelProvider.objects.filter(store=store).values_list("channel", "provider"))
    assert chosen == {WHATSAPP: "sandbox", SMS: "twilio", EMAIL: "sandbox"}


# --- quiet hours (store time zone, 21:00-09:00 by default) -----------------------------------
def test_late_evening_is_held_until_nine_the_next_morning():
    settings = messaging_settings_for(StoreFactory())

    assert quiet_hours_end(settings, casablanca(10, 22, 30)) == casablanca(11, 9, 0)


def test_the_small_hours_are_held_until_nine_the_same_morning():
    settings = messaging_settings_for(StoreFactory())

    assert quiet_hours_end(settings, casablanca(10, 3, 15)) == casablanca(10, 9, 0)


@pytest.mark.parametrize(("hour", "minute"), [(9, 0), (12, 0), (20, 59)])
def test_daytime_is_not_held(hour, minute):
    settings = messaging_settings_for(StoreFactory())

    assert quiet_hours_end(settings, casablanca(10, hour, minute)) is None


def test_quiet_hours_follow_the_store_time_zone_not_utc():
    # 21:30 in UTC is 22:30 in Casablanca (UTC+1): inside; 19:30 UTC is 20:30 there: outside.
    settings = messaging_settings_for(StoreFactory())

    assert quiet_hours_end(settings, datetime.datetime(2025, 6, 10, 21, 30, tzinfo=datetime.UTC)) is not None
    assert quiet_hours_end(settings, datetime.datetime(2025, 6, 10, 19, 30, tzinfo=datetime.UTC)) is None


def test_a_store_without_quiet_hours_never_holds_a_message():
    store = StoreFactory()
    MessagingSettings.objects.create(store=store, quiet_hours_start=None, quiet_hours_end=None)

    assert quiet_hours_end(messaging_settings_for(store), casablanca(10, 23, 0)) is None
