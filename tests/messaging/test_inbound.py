"""Customer replies: what each word means, what a reply does to orders and consent, and the inbox."""

import itertools
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging.models import Channel, Consent, ConsentEvent, InboundMessage, Message, Notification
from messaging.providers import InboundReply
from messaging.services.consent import consent_record
from messaging.services.inbound import (
    CANCEL_PHRASES,
    CONFIRM_PHRASES,
    NEUTRAL_PHRASES,
    OPT_OUT_PHRASES,
    inbound_mark_handled,
    inbound_reply_handle,
    normalize_reply,
)
from orders.models import OrderEvent, Store
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.factories import CustomerFactory, StoreFactory, UserFactory, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
Intent = InboundMessage.Intent
WA, SMS = Channel.WHATSAPP, Channel.SMS
_ids = itertools.count(1)


def reply_from(
    phone: str, text: str = "", *, channel: str = WA, message_id: str = "", **extra
) -> InboundReply:
    return InboundReply(
        channel=channel,
        sender=phone,
        provider_message_id=message_id or f"SBIN{next(_ids)}",
        text=text,
        **extra,
    )


def handle(store, reply: InboundReply) -> InboundMessage:
    return inbound_reply_handle(store, "sandbox", reply)


def awaiting_order(**kwargs):
    return order_in_status(S.AWAITING_CONFIRMATION, **kwargs)


def answers(order) -> list[str]:
    """What ``order``'s customer was answered (the reply_* notifications' events), oldest first."""
    notifications = Notification.objects.filter(order=order, event__startswith="reply_").order_by("pk")
    return list(notifications.values_list("event", flat=True))


# --- What the words mean ----------------------------------------------------------------------
WORDS = [
    # digits, English, French
    ("1", WA, Intent.CONFIRM),
    ("١", WA, Intent.CONFIRM),  # Arabic-Indic digit
    ("1️⃣", WA, Intent.CONFIRM),
    ("YES!", WA, Intent.CONFIRM),
    ("ok 👍", WA, Intent.CONFIRM),
    ("👍🏽", WA, Intent.CONFIRM),
    ("Confirm", WA, Intent.CONFIRM),
    ("Oui", WA, Intent.CONFIRM),
    ("ouiii", WA, Intent.CONFIRM),
    ("Oui, je confirme ma commande. Merci !", WA, Intent.CONFIRM),
    ("D’accord", WA, Intent.CONFIRM),
    ("Confirmer", WA, Intent.CONFIRM),
    ("2", WA, Intent.CANCEL),
    ("٢", WA, Intent.CANCEL),
    ("no", WA, Intent.CANCEL),
    ("Non merci", WA, Intent.CANCEL),
    ("J'annule", WA, Intent.CANCEL),
    ("Annuler la commande", WA, Intent.CANCEL),
    ("❌", WA, Intent.CANCEL),
    ("cancel", WA, Intent.CANCEL),  # an answer on WhatsApp ...
    ("cancel my order", SMS, Intent.CANCEL),  # ... and on SMS unless it is the keyword alone
    # Arabic
    ("نعم", WA, Intent.CONFIRM),
    ("نَعَم", WA, Intent.CONFIRM),
    ("تأكيد", WA, Intent.CONFIRM),
    ("لا", WA, Intent.CANCEL),
    ("لااا", WA, Intent.CANCEL),
    ("إلغاء", WA, Intent.CANCEL),
    # Darija, Arabic script and Latin letters
    ("واخا", WA, Intent.CONFIRM),
    ("بغيت", WA, Intent.CONFIRM),
    ("صافي", WA, Intent.CONFIRM),
    ("wakha", WA, Intent.CONFIRM),
    ("Wakhaaa merci", WA, Intent.CONFIRM),
    ("wah", WA, Intent.CONFIRM),
    ("iyeh", WA, Intent.CONFIRM),
    ("Safi.", WA, Intent.CONFIRM),
    ("salam, wakha", WA, Intent.CONFIRM),
    ("ماشي", WA, Intent.CANCEL),
    ("لا ما بغيتش", WA, Intent.CANCEL),
    ("مابغيتش", WA, Intent.CANCEL),
    ("la", WA, Intent.CANCEL),
    ("lla", WA, Intent.CANCEL),
    ("mabghitch", WA, Intent.CANCEL),
    ("Ma bghitch !", WA, Intent.CANCEL),
    # opt-out keywords: Twilio's, French, Arabic
    ("STOP", SMS, Intent.OPT_OUT),
    ("stop", WA, Intent.OPT_OUT),
    ("StopAll", SMS, Intent.OPT_OUT),
    ("UNSUBSCRIBE", SMS, Intent.OPT_OUT),
    ("END", SMS, Intent.OPT_OUT),
    ("Quit", SMS, Intent.OPT_OUT),
    ("REVOKE", SMS, Intent.OPT_OUT),
    ("OPTOUT", SMS, Intent.OPT_OUT),
    ("CANCEL", SMS, Intent.OPT_OUT),
    ("ARRET", SMS, Intent.OPT_OUT),
    ("Arrêt.", SMS, Intent.OPT_OUT),
    ("DESABONNER", SMS, Intent.OPT_OUT),
    ("désabonner", WA, Intent.OPT_OUT),
    ("توقف", WA, Intent.OPT_OUT),
    ("إيقاف", SMS, Intent.OPT_OUT),
    ("ايقاف", SMS, Intent.OPT_OUT),
    ("non, stop", SMS, Intent.OPT_OUT),  # a stop word is honoured even beside an answer
    ("START", SMS, Intent.OPT_IN),
    # for an agent
    ("oui mais changez l'adresse", WA, Intent.OTHER),
    ("oui non", WA, Intent.OTHER),
    ("ماشي مشكل", WA, Intent.OTHER),  # "no problem": not a no
    ("Where is my parcel?", WA, Intent.OTHER),
    ("merci", WA, Intent.OTHER),
    ("3", WA, Intent.OTHER),
    ("", WA, Intent.OTHER),
]


@pytest.mark.parametrize(("text", "channel", "intent"), WORDS, ids=[f"{t!r}-{c}" for t, c, _ in WORDS])
def test_each_reply_is_read_as_what_the_customer_means(text, channel, intent):
    customer = CustomerFactory()

    inbound = handle(customer.store, reply_from(customer.phone, text, channel=channel))

    assert inbound.intent == intent


def test_no_phrase_in_the_word_lists_means_two_different_things():
    confirm, cancel = (
        {normalize_reply(p) for p in CONFIRM_PHRASES},
        {normalize_reply(p) for p in CANCEL_PHRASES},
    )
    neutral = {normalize_reply(p) for p in NEUTRAL_PHRASES}
    opt_out = {normalize_reply(p) for p in OPT_OUT_PHRASES} - {"cancel"}  # read by channel

    assert not confirm & cancel
    assert not (confirm | cancel) & (opt_out | neutral)


def test_a_quick_reply_button_is_read_from_its_payload_not_its_title():
    customer = CustomerFactory()

    inbound = handle(customer.store, reply_from(customer.phone, "تأكيد", button_payload="cancel:42"))

    assert inbound.intent == Intent.CANCEL


# --- Confirming and cancelling ----------------------------------------------------------------
def test_a_confirm_reply_confirms_the_order_as_the_customer():
    order = awaiting_order()

    inbound = handle(order.store, reply_from(order.customer.phone, "wakha", message_id="SBIN-confirm-1"))

    order.refresh_from_db()
    event = order.events.get(transition="confirm")
    assert order.status == S.CONFIRMED
    assert (event.source, event.idempotency_key) == (
        OrderEvent.Source.CUSTOMER,
        "reply:sandbox:SBIN-confirm-1",
    )
    assert event.payload == {"inbound_id": inbound.pk}
    assert (inbound.handled, inbound.order) == (True, order)


def test_a_confirm_reply_tells_the_customer_the_order_is_confirmed():
    order = awaiting_order()

    handle(order.store, reply_from(order.customer.phone, "1"))

    assert Notification.objects.filter(order=order, event="order_confirmed").count() == 1


def test_a_cancel_reply_cancels_the_order_and_tells_the_customer():
    order = awaiting_order()

    inbound = handle(order.store, reply_from(order.customer.phone, "لا"))

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert inbound.handled
    assert Notification.objects.filter(order=order, event="order_cancelled").exists()


def test_a_reply_answers_the_order_whose_confirmation_was_asked_last():
    customer = CustomerFactory()
    older = awaiting_order(customer=customer, store=customer.store)
    newer = awaiting_order(customer=customer, store=customer.store)

    inbound = handle(customer.store, reply_from(customer.phone, "oui"))

    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, newer.status) == (S.AWAITING_CONFIRMATION, S.CONFIRMED)
    assert inbound.order == newer


def test_a_button_answers_its_own_order_even_when_a_newer_one_awaits():
    customer = CustomerFactory()
    older = awaiting_order(customer=customer, store=customer.store)
    newer = awaiting_order(customer=customer, store=customer.store)

    handle(customer.store, reply_from(customer.phone, "Confirm", button_payload=f"confirm:{older.pk}"))

    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, newer.status) == (S.CONFIRMED, S.AWAITING_CONFIRMATION)


def test_a_reply_to_a_message_answers_that_messages_order():
    customer = CustomerFactory()
    older = awaiting_order(customer=customer, store=customer.store)
    awaiting_order(customer=customer, store=customer.store)
    asked = Message.objects.get(order=older, event="confirmation_requested")
    Message.objects.filter(pk=asked.pk).update(provider_message_id="SB-asked-older")

    inbound = handle(
        customer.store, reply_from(customer.phone, "oui", in_reply_to_provider_id="SB-asked-older")
    )

    older.refresh_from_db()
    assert older.status == S.CONFIRMED
    assert inbound.in_reply_to_id == asked.pk


def test_a_cancel_button_on_a_confirmed_order_changes_nothing_and_says_it_is_already_confirmed():
    order = order_in_status(S.CONFIRMED)

    inbound = handle(
        order.store, reply_from(order.customer.phone, "Cancel", button_payload=f"cancel:{order.pk}")
    )

    order.refresh_from_db()
    assert order.status == S.CONFIRMED
    assert (inbound.intent, inbound.handled, inbound.order) == (Intent.CANCEL, True, order)
    assert answers(order) == ["reply_late_confirmed"]


def test_a_late_reply_records_what_was_done_with_it():
    order = order_in_status(S.CONFIRMED)

    inbound = handle(order.store, reply_from(order.customer.phone, "annuler"))

    assert inbound.outcome == (
        "order already confirmed; rule 'A cancel after confirming: already confirmed, send 2 for a "
        "call': sent reply_late_confirmed"
    )


def test_a_timely_answer_records_what_it_did_to_the_order():
    order = awaiting_order()

    inbound = handle(order.store, reply_from(order.customer.phone, "wakha"))

    assert inbound.outcome == "order confirmed"


LATE_CANCELS = ["2", "non", "Annuler la commande", "لا", "إلغاء", "mabghitch", "❌", "cancel my order"]
LATE_CONFIRMS = ["1", "oui", "Je confirme", "نعم", "واخا", "wakha", "👍", "yes"]


@pytest.mark.parametrize("text", LATE_CANCELS)
def test_a_cancel_in_any_language_after_confirming_gets_the_late_answer(text):
    order = order_in_status(S.CONFIRMED)

    inbound = handle(order.store, reply_from(order.customer.phone, text))

    assert (inbound.intent, inbound.handled) == (Intent.CANCEL, True)
    assert answers(order) == ["reply_late_confirmed"]


@pytest.mark.parametrize("text", LATE_CONFIRMS)
def test_a_confirm_in_any_language_after_a_cancel_gets_the_late_answer(text):
    order = order_in_status(S.CANCELLED)

    inbound = handle(order.store, reply_from(order.customer.phone, text))

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert (inbound.intent, inbound.handled) == (Intent.CONFIRM, True)
    assert answers(order) == ["reply_late_cancelled"]


def test_a_typed_reply_with_no_order_awaiting_is_about_the_customers_order_that_changed_last():
    customer = CustomerFactory()
    order_in_status(S.DELIVERED, customer=customer, store=customer.store)
    latest = order_in_status(S.SHIPPED, customer=customer, store=customer.store)

    inbound = handle(customer.store, reply_from(customer.phone, "oui"))

    assert (inbound.intent, inbound.handled, inbound.order) == (Intent.CONFIRM, True, latest)
    assert answers(latest) == ["reply_already_confirmed"]


def test_a_typed_reply_answers_the_order_awaiting_confirmation_before_one_that_changed_since():
    customer = CustomerFactory()
    asked = awaiting_order(customer=customer, store=customer.store)
    order_in_status(S.SHIPPED, customer=customer, store=customer.store)

    handle(customer.store, reply_from(customer.phone, "oui"))

    asked.refresh_from_db()
    assert asked.status == S.CONFIRMED


def test_a_typed_reply_is_about_no_order_when_the_last_change_is_over_two_weeks_old():
    customer = CustomerFactory()
    with time_machine.travel(timezone.now() - timedelta(days=15), tick=False):
        old = order_in_status(S.CONFIRMED, customer=customer, store=customer.store)

    inbound = handle(customer.store, reply_from(customer.phone, "annuler"))

    assert (inbound.handled, inbound.outcome, inbound.order) == (False, "no recent order", old)
    assert answers(old) == []


def test_a_reply_to_a_message_is_about_that_messages_order_whatever_its_status_now():
    customer = CustomerFactory()
    confirmed = order_in_status(S.CONFIRMED, customer=customer, store=customer.store)
    awaiting_order(customer=customer, store=customer.store)
    asked = Message.objects.get(order=confirmed, event="confirmation_requested")
    Message.objects.filter(pk=asked.pk).update(provider_message_id="SB-asked-confirmed")

    inbound = handle(
        customer.store, reply_from(customer.phone, "2", in_reply_to_provider_id="SB-asked-confirmed")
    )

    assert inbound.order == confirmed
    assert answers(confirmed) == ["reply_late_confirmed"]


def test_anything_else_goes_to_the_inbox_linked_to_the_customer_and_their_order():
    order = awaiting_order()

    inbound = handle(order.store, reply_from(order.customer.phone, "Vous livrez à Tanger ?"))

    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION
    assert (inbound.intent, inbound.handled) == (Intent.OTHER, False)
    assert (inbound.customer, inbound.order) == (order.customer, order)


def test_an_unclear_reply_is_acknowledged_queued_and_left_for_an_agent():
    order = awaiting_order()

    inbound = handle(order.store, reply_from(order.customer.phone, "C'est combien la livraison ?"))

    assert answers(order) == ["reply_received"]
    assert order.queue_entries.get().reason == "the customer's answer needs a human"
    assert inbound.handled is False
    assert inbound.outcome.startswith("for an agent; ")
    assert "sent reply_received" in inbound.outcome


def test_five_unclear_lines_in_a_row_get_one_acknowledgement():
    order = awaiting_order()

    for line in ["Salam", "svp", "je voulais savoir", "la couleur", "c'est noir ?"]:
        handle(order.store, reply_from(order.customer.phone, line))

    assert answers(order) == ["reply_received"]


def test_an_unclear_reply_half_an_hour_after_the_last_acknowledgement_is_acknowledged_again():
    order = awaiting_order()
    handle(order.store, reply_from(order.customer.phone, "Allô ?"))

    with time_machine.travel(timezone.now() + timedelta(minutes=31), tick=False):
        handle(order.store, reply_from(order.customer.phone, "Allô ??"))

    assert answers(order) == ["reply_received", "reply_received"]


def test_an_unclear_message_about_a_delivered_order_is_acknowledged_not_queued():
    order = order_in_status(S.DELIVERED)

    inbound = handle(order.store, reply_from(order.customer.phone, "Le produit est cassé"))

    assert answers(order) == ["reply_received"]
    assert not order.queue_entries.exists()
    assert (inbound.order, inbound.handled) == (order, False)


@pytest.mark.parametrize("status", [S.DELIVERY_FAILED, S.DELIVERED, S.RETURNED, S.REFUNDED])
def test_a_late_confirm_no_rule_answers_is_acknowledged_and_left_for_an_agent(status):
    order = order_in_status(status, payment_method="prepaid" if status == S.REFUNDED else "cod")

    inbound = handle(order.store, reply_from(order.customer.phone, "oui"))

    assert answers(order) == ["reply_received"]
    assert (inbound.intent, inbound.handled) == (Intent.CONFIRM, False)


def test_a_reply_rule_that_fails_leaves_the_reply_recorded_for_an_agent():
    order = order_in_status(S.CONFIRMED)
    # A rule broken behind the editor's back (its conditions were never checked)
    order.store.rules.filter(key="late-cancel-confirmed").update(conditions={"field": "nonsense"})

    inbound = handle(order.store, reply_from(order.customer.phone, "annuler"))

    inbound.refresh_from_db()
    assert (inbound.intent, inbound.handled) == (Intent.CANCEL, False)
    assert answers(order) == ["reply_received"]  # acknowledged, as any reply no rule answers


def test_a_reply_from_an_unknown_number_goes_to_the_inbox_with_no_customer():
    store = StoreFactory()

    inbound = handle(store, reply_from("+212699999999", "oui"))

    assert (inbound.customer, inbound.order, inbound.handled) == (None, None, False)


def test_a_stop_from_an_unknown_number_records_no_consent_and_goes_to_the_inbox():
    store = StoreFactory()

    inbound = handle(store, reply_from("+212699999999", "STOP", channel=SMS))

    assert (inbound.intent, inbound.handled) == (Intent.OPT_OUT, False)
    assert not Consent.objects.exists()


def test_a_whatsapp_id_without_its_plus_finds_the_customer():
    order = awaiting_order()

    inbound = handle(order.store, reply_from(order.customer.phone.removeprefix("+"), "oui"))

    assert inbound.customer == order.customer


def test_a_customer_of_another_store_with_the_same_number_is_not_answered_for():
    order = awaiting_order()
    other_store = StoreFactory()

    inbound = handle(other_store, reply_from(order.customer.phone, "oui"))

    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION
    assert inbound.customer is None


def test_a_repeated_provider_message_is_handled_once():
    order = awaiting_order()
    reply = reply_from(order.customer.phone, "1", message_id="SBIN-twice")

    first = handle(order.store, reply)
    second = handle(order.store, reply)

    assert first.pk == second.pk
    assert InboundMessage.objects.count() == 1
    assert order.events.filter(transition="confirm").count() == 1


def test_a_reply_repeated_after_an_agent_moved_the_order_is_not_applied_again():
    order = awaiting_order()
    reply = reply_from(order.customer.phone, "1", message_id="SBIN-late-repeat")
    handle(order.store, reply)
    order_transition(order, "cancel", source=OrderEvent.Source.SYSTEM)

    handle(order.store, reply)

    order.refresh_from_db()
    assert order.status == S.CANCELLED


# --- Opting out and back in -------------------------------------------------------------------
def test_stop_opts_the_customer_out_of_that_channel_at_once_with_the_reply_as_evidence():
    customer = CustomerFactory()

    inbound = handle(customer.store, reply_from(customer.phone, "STOP", channel=SMS, message_id="SBIN-stop"))

    consent = Consent.objects.get(customer=customer, channel=SMS)
    assert (consent.status, consent.source) == (Consent.Status.OPTED_OUT, Consent.Source.CUSTOMER_REPLY)
    assert consent.evidence["inbound_id"] == inbound.pk
    assert consent.evidence["provider_message_id"] == "SBIN-stop"
    assert ConsentEvent.objects.filter(customer=customer, status=Consent.Status.OPTED_OUT).count() == 1
    assert inbound.handled


def test_stop_leaves_the_order_awaiting_an_answer():
    order = awaiting_order()

    handle(order.store, reply_from(order.customer.phone, "توقف"))

    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION


def test_an_opt_out_holds_later_messages_skip_that_channel():
    customer = CustomerFactory()
    handle(customer.store, reply_from(customer.phone, "ARRÊT", channel=WA))

    order = awaiting_order(customer=customer, store=customer.store)

    notification = Notification.objects.get(order=order, event="confirmation_requested")
    assert WA not in notification.channels
    assert Message.objects.get(notification=notification).channel == SMS


def test_start_opts_the_customer_back_in():
    customer = CustomerFactory()
    handle(customer.store, reply_from(customer.phone, "STOP", channel=WA))

    inbound = handle(customer.store, reply_from(customer.phone, "START", channel=WA))

    assert inbound.intent == Intent.OPT_IN
    assert Consent.objects.get(customer=customer, channel=WA).status == Consent.Status.OPTED_IN
    order = awaiting_order(customer=customer, store=customer.store)
    assert Message.objects.get(order=order).channel == WA


@pytest.mark.parametrize("word", ["YES", "Oui", "نعم"])
def test_yes_opts_back_in_while_the_customer_is_opted_out(word):
    order = awaiting_order()
    consent_record(order.customer, SMS, Consent.Status.OPTED_OUT, source=Consent.Source.PROVIDER)

    inbound = handle(order.store, reply_from(order.customer.phone, word, channel=SMS))

    order.refresh_from_db()
    assert inbound.intent == Intent.OPT_IN
    assert Consent.objects.get(customer=order.customer, channel=SMS).status == Consent.Status.OPTED_IN
    assert order.status == S.AWAITING_CONFIRMATION


def test_yes_confirms_the_order_when_the_customer_never_opted_out():
    order = awaiting_order()

    inbound = handle(order.store, reply_from(order.customer.phone, "YES", channel=SMS))

    order.refresh_from_db()
    assert inbound.intent == Intent.CONFIRM
    assert order.status == S.CONFIRMED
    assert not Consent.objects.exists()


def test_an_opt_out_on_sms_leaves_whatsapp_open():
    customer = CustomerFactory()

    handle(customer.store, reply_from(customer.phone, "STOP", channel=SMS))

    assert not Consent.objects.filter(customer=customer, channel=WA).exists()


def test_a_providers_own_stop_classification_is_honoured():
    customer = CustomerFactory()

    inbound = handle(customer.store, reply_from(customer.phone, "Arrête de m'écrire", opt_out_type="STOP"))

    assert inbound.intent == Intent.OPT_OUT
    assert Consent.objects.get(customer=customer, channel=WA).status == Consent.Status.OPTED_OUT


# --- The inbox (admin) ------------------------------------------------------------------------
def inbox_url(**filters) -> str:
    return reverse("admin:messaging_inboundmessage_changelist") + (
        f"?{urlencode(filters)}" if filters else ""
    )


def logged_in(client, *groups, permissions=()):
    user = UserFactory(groups=list(groups), stores=Store.objects.all())
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="messaging", codename__in=permissions)
    )
    client.force_login(user)
    return user


def listed(response) -> set[int]:
    return {row.pk for row in response.context["cl"].result_list}


def test_an_agent_sees_each_reply_with_its_customer_order_text_and_intent(client):
    order = awaiting_order()
    inbound = handle(order.store, reply_from(order.customer.phone, "Vous livrez à Tanger ?"))
    logged_in(client, "Confirmation agent")

    response = client.get(inbox_url())

    assert response.status_code == 200
    page = response.content.decode()
    assert listed(response) == {inbound.pk}
    assert reverse("admin:orders_order_change", args=[order.pk]) in page
    assert reverse("admin:orders_customer_change", args=[order.customer.pk]) in page
    assert "Vous livrez à Tanger ?" in page
    assert "Needs an agent" in page
    assert "for an agent; rule" in page  # what was done with it


def test_arabic_replies_are_shown_in_their_own_direction(client):
    customer = CustomerFactory()
    handle(customer.store, reply_from(customer.phone, "فين وصلات الطلبية ديالي؟"))
    logged_in(client, "Confirmation agent")

    response = client.get(inbox_url())

    assert '<span dir="auto">فين وصلات الطلبية ديالي؟</span>' in response.content.decode()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"handled__exact": "0"}, {"question"}),
        ({"intent__exact": "opt_out"}, {"stop"}),
        ({"channel__exact": "sms"}, {"stop"}),
    ],
)
def test_the_inbox_filters_by_handled_intent_and_channel(client, filters, expected):
    order = awaiting_order()
    sent = {
        "question": handle(order.store, reply_from(order.customer.phone, "C'est quand ?")),
        "stop": handle(order.store, reply_from(order.customer.phone, "STOP", channel=SMS)),
        "confirm": handle(order.store, reply_from(order.customer.phone, "oui")),
    }
    logged_in(client, "Confirmation agent")

    response = client.get(inbox_url(**filters))

    assert listed(response) == {sent[name].pk for name in expected}


def test_marking_replies_handled_records_the_agent(client):
    customer = CustomerFactory()
    inbound = handle(customer.store, reply_from(customer.phone, "Je peux payer par carte ?"))
    agent = logged_in(client, "Confirmation agent")

    response = client.post(
        inbox_url(), {"action": "mark_handled", "_selected_action": [inbound.pk]}, follow=True
    )

    inbound.refresh_from_db()
    assert (inbound.handled, inbound.handled_by) == (True, agent)
    assert "1 reply marked handled." in [m.message for m in response.context["messages"]]


def test_marking_a_reply_handled_again_keeps_who_handled_it_first(client):
    customer = CustomerFactory()
    inbound = handle(customer.store, reply_from(customer.phone, "Allô ?"))
    first = UserFactory()
    inbound_mark_handled([inbound.pk], actor=first)
    logged_in(client, "Confirmation agent")

    client.post(inbox_url(), {"action": "mark_handled", "_selected_action": [inbound.pk]})

    inbound.refresh_from_db()
    assert inbound.handled_by == first


def test_a_user_who_may_only_view_replies_cannot_mark_them_handled(client):
    customer = CustomerFactory()
    inbound = handle(customer.store, reply_from(customer.phone, "Allô ?"))
    logged_in(client, permissions=["view_inboundmessage"])

    listing = client.get(inbox_url())
    client.post(inbox_url(), {"action": "mark_handled", "_selected_action": [inbound.pk]})

    inbound.refresh_from_db()
    assert listing.status_code == 200
    assert "mark_handled" not in listing.content.decode()
    assert (inbound.handled, inbound.handled_by) == (False, None)


def test_staff_without_the_view_permission_cannot_open_the_inbox(client):
    logged_in(client)

    response = client.get(inbox_url())

    assert response.status_code == 403


def test_replies_cannot_be_added_edited_or_deleted_in_the_inbox(client):
    customer = CustomerFactory()
    inbound = handle(customer.store, reply_from(customer.phone, "Allô ?"))
    logged_in(client, "Store admin")

    add = client.get(reverse("admin:messaging_inboundmessage_add"))
    delete = client.get(reverse("admin:messaging_inboundmessage_delete", args=[inbound.pk]))
    change = client.get(reverse("admin:messaging_inboundmessage_change", args=[inbound.pk]))

    assert (add.status_code, delete.status_code) == (403, 403)
    assert change.context["adminform"].form.fields == {}  # every field read-only


def test_the_inbox_list_needs_as_many_queries_for_thirty_replies_as_for_one(client):
    customer = CustomerFactory()
    logged_in(client, "Confirmation agent")

    def queries_to_list(replies: int) -> int:
        for n in range(replies):
            order = awaiting_order(customer=customer, store=customer.store)
            handle(
                customer.store,
                reply_from(customer.phone, f"question {n}", button_payload=f"other:{order.pk}"),
            )
        with CaptureQueriesContext(connection) as queries:
            assert client.get(inbox_url()).status_code == 200
        return len(queries)

    assert queries_to_list(1) == queries_to_list(29)
