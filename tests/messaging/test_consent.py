"""Consent: per customer and channel, with evidence; opt-outs hold; marketing needs its own yes."""

import datetime
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from messaging.models import Channel, Consent, ConsentEvent, Message, MessagingSettings, Notification, Purpose
from messaging.providers import ErrorKind, ProviderError
from messaging.services.consent import consent_allows, consent_record
from messaging.services.outbox import notification_create
from messaging.services.sweep import outbox_sweep
from tests.factories import CustomerFactory, OrderFactory, UserFactory
from tests.fakes.scripted_provider import use_scripted_provider

pytestmark = pytest.mark.django_db

WHATSAPP, SMS, EMAIL = Channel.WHATSAPP, Channel.SMS, Channel.EMAIL
IN, OUT = Consent.Status.OPTED_IN, Consent.Status.OPTED_OUT
IMPLIED = MessagingSettings.TransactionalPolicy.IMPLIED
EXPLICIT = MessagingSettings.TransactionalPolicy.EXPLICIT
NOON = datetime.datetime(2025, 6, 10, 12, 0, tzinfo=ZoneInfo("Africa/Casablanca"))


@pytest.fixture(autouse=True)
def at_noon(time_machine):
    time_machine.move_to(NOON, tick=False)
    return time_machine


def allows(customer, channel, purpose=Purpose.TRANSACTIONAL, policy=IMPLIED) -> bool:
    return consent_allows(customer, channel, purpose, policy=policy)


# --- recording ------------------------------------------------------------------------------
def test_an_opt_in_is_recorded_with_its_source_time_agent_and_evidence():
    customer, agent = CustomerFactory(), UserFactory()

    consent_record(
        customer,
        WHATSAPP,
        IN,
        source=Consent.Source.AGENT,
        actor=agent,
        evidence={"call_id": "C-12"},
    )

    consent = Consent.objects.get(customer=customer, channel=WHATSAPP)
    assert (consent.status, consent.source, consent.recorded_by) == (IN, Consent.Source.AGENT, agent)
    assert consent.recorded_at == NOON
    assert consent.evidence == {"call_id": "C-12"}


def test_every_change_is_appended_to_the_consent_history(at_noon):
    customer = CustomerFactory()

    consent_record(customer, SMS, IN, source=Consent.Source.CHECKOUT)
    at_noon.shift(datetime.timedelta(days=1))
    consent_record(customer, SMS, OUT, source=Consent.Source.CUSTOMER_REPLY, evidence={"inbound_id": 7})

    history = ConsentEvent.objects.filter(customer=customer, channel=SMS)
    assert [(e.status, e.source) for e in history] == [
        (IN, Consent.Source.CHECKOUT),
        (OUT, Consent.Source.CUSTOMER_REPLY),
    ]
    assert history.last().evidence == {"inbound_id": 7}
    assert Consent.objects.filter(customer=customer, channel=SMS).count() == 1


def test_consent_is_kept_per_channel():
    customer = CustomerFactory()

    consent_record(customer, WHATSAPP, OUT, source=Consent.Source.CUSTOMER_REPLY)

    assert not allows(customer, WHATSAPP)
    assert allows(customer, SMS)


# --- opt-outs ------------------------------------------------------------------------------
def test_an_opt_out_holds_until_the_customer_opts_in_again():
    customer = CustomerFactory()

    consent_record(customer, SMS, OUT, source=Consent.Source.CUSTOMER_REPLY)
    assert not allows(customer, SMS)
    assert not allows(customer, SMS, policy=EXPLICIT)

    consent_record(customer, SMS, IN, source=Consent.Source.CUSTOMER_REPLY)
    assert allows(customer, SMS)


def test_an_opt_out_also_ends_marketing_consent_and_a_later_opt_in_does_not_restore_it():
    customer = CustomerFactory()
    consent_record(customer, WHATSAPP, IN, marketing=True, source=Consent.Source.CHECKOUT)

    consent_record(customer, WHATSAPP, OUT, source=Consent.Source.CUSTOMER_REPLY)
    consent_record(customer, WHATSAPP, IN, source=Consent.Source.CUSTOMER_REPLY)

    assert allows(customer, WHATSAPP)
    assert not allows(customer, WHATSAPP, Purpose.MARKETING)


def test_a_provider_opt_out_error_records_the_opt_out_and_the_next_channel_is_tried(
    scripted, django_capture_on_commit_callbacks
):
    # given a customer who replied STOP to the store's WhatsApp number at the provider
    order = OrderFactory()
    use_scripted_provider(order.store)
    scripted.script(ProviderError(ErrorKind.OPTED_OUT, "63014", "user blocked"), channel=WHATSAPP)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        notification = notification_create(order, event="order_confirmed", key="k")

    # then
    whatsapp = notification.messages.get(channel=WHATSAPP)
    consent = Consent.objects.get(customer=order.customer, channel=WHATSAPP)
    assert whatsapp.status == Message.Status.UNDELIVERABLE
    assert (consent.status, consent.source) == (OUT, Consent.Source.PROVIDER)
    assert consent.evidence == {"provider": "scripted", "error_code": "63014", "message_id": whatsapp.pk}
    assert notification.messages.get(channel=SMS).status == Message.Status.SENT


def test_a_message_waiting_for_the_morning_is_not_sent_after_the_customer_opts_out(
    scripted, time_machine, django_capture_on_commit_callbacks
):
    # given a non-urgent message held by quiet hours
    order = OrderFactory()
    use_scripted_provider(order.store)
    time_machine.move_to(NOON.replace(hour=22, minute=30))
    notification = notification_create(order, event="order_confirmed", key="k")
    # when the customer opts out of WhatsApp during the night
    consent_record(order.customer, WHATSAPP, OUT, source=Consent.Source.CUSTOMER_REPLY)
    time_machine.move_to(NOON.replace(day=11, hour=9, minute=1))
    with django_capture_on_commit_callbacks(execute=True):
        outbox_sweep()

    # then WhatsApp is skipped and the next channel goes instead
    whatsapp = notification.messages.get(channel=WHATSAPP)
    assert (whatsapp.status, whatsapp.error_code) == (Message.Status.UNDELIVERABLE, "no_consent")
    assert [call.channel for call in scripted.calls] == [SMS]


# --- marketing ----------------------------------------------------------------------------
def test_marketing_is_never_allowed_without_an_explicit_marketing_opt_in():
    customer = CustomerFactory()
    assert not allows(customer, WHATSAPP, Purpose.MARKETING)

    consent_record(customer, WHATSAPP, IN, source=Consent.Source.CHECKOUT)
    assert not allows(customer, WHATSAPP, Purpose.MARKETING)

    consent_record(customer, WHATSAPP, IN, marketing=True, source=Consent.Source.CHECKOUT)
    assert allows(customer, WHATSAPP, Purpose.MARKETING)


def test_a_marketing_notification_skips_channels_without_marketing_consent():
    order = OrderFactory()
    consent_record(order.customer, WHATSAPP, IN, source=Consent.Source.CHECKOUT)
    consent_record(order.customer, SMS, IN, marketing=True, source=Consent.Source.CHECKOUT)

    notification = notification_create(order, event="order_delivered", key="k", purpose=Purpose.MARKETING)

    assert notification.channels == [SMS]


def test_a_marketing_notification_without_any_marketing_consent_has_no_channel():
    order = OrderFactory()
    consent_record(order.customer, WHATSAPP, IN, source=Consent.Source.CHECKOUT)

    notification = notification_create(order, event="order_delivered", key="k", purpose=Purpose.MARKETING)

    assert notification.status == Notification.Status.NO_CHANNEL
    assert not notification.messages.exists()


# --- the store's transactional policy -------------------------------------------------------
def test_under_the_implied_policy_a_contact_given_at_checkout_is_enough():
    assert allows(CustomerFactory(), WHATSAPP, policy=IMPLIED)


def test_under_the_explicit_policy_a_transactional_message_needs_an_opt_in():
    customer = CustomerFactory()
    assert not allows(customer, WHATSAPP, policy=EXPLICIT)

    consent_record(customer, WHATSAPP, IN, source=Consent.Source.CHECKOUT)
    assert allows(customer, WHATSAPP, policy=EXPLICIT)


def test_a_notification_under_the_explicit_policy_without_any_opt_in_has_no_channel():
    order = OrderFactory()
    MessagingSettings.objects.create(store=order.store, transactional_policy=EXPLICIT)

    notification = notification_create(order, event="order_confirmed", key="k")

    assert notification.status == Notification.Status.NO_CHANNEL


# --- concurrency (PostgreSQL) ----------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_first_records_at_once_both_count_and_leave_one_consent_row():
    # given a STOP reply and the provider's opt-out error arriving together for a new customer
    customer = CustomerFactory()
    first_inserted, errors = threading.Event(), []

    def record(source: str, hold: float) -> None:
        try:
            with transaction.atomic():
                consent_record(customer, SMS, OUT, source=source)
                first_inserted.set()
                time.sleep(hold)  # the other one arrives meanwhile and waits on the constraint
        except Exception as exc:  # the assertion below names it
            errors.append(exc)
        finally:
            connection.close()

    # when both record the opt-out
    reply = threading.Thread(target=record, args=(Consent.Source.CUSTOMER_REPLY, 0.5))
    reply.start()
    first_inserted.wait(5)
    provider = threading.Thread(target=record, args=(Consent.Source.PROVIDER, 0))
    provider.start()
    reply.join(10)
    provider.join(10)

    # then neither fails: one row, two pieces of evidence
    assert errors == []
    assert Consent.objects.get(customer=customer, channel=SMS).source == Consent.Source.PROVIDER
    assert ConsentEvent.objects.filter(customer=customer, channel=SMS).count() == 2
