"""The default templates: one per customer event, language and channel; the reminder and the answers
to replies have their own texts; Arabic ones keep order numbers and amounts in their direction."""

import importlib

import pytest
from django.apps import apps

from messaging.default_templates import FSI, PDI, TEXTS
from messaging.events import CUSTOMER_EVENTS
from messaging.models import MessageTemplate
from messaging.services.rendering import order_context, render_text, unknown_placeholders
from orders.transitions import OrderStatus
from tests.factories import order_in_status

pytestmark = pytest.mark.django_db

LANGUAGES, CHANNELS = ("en", "fr", "ar"), ("whatsapp", "sms", "email")
REPLY_EVENTS = ("reply_received", "reply_already_confirmed", "reply_late_confirmed", "reply_late_cancelled")
NEW_EVENTS = ("confirmation_reminder", *REPLY_EVENTS)


def default(event: str, channel: str, language: str) -> MessageTemplate:
    return MessageTemplate.objects.get(store=None, event=event, channel=channel, language=language)


def test_every_customer_event_has_a_default_template_in_each_language_on_each_channel():
    installed = set(MessageTemplate.objects.filter(store=None).values_list("event", "channel", "language"))

    missing = {
        (event, channel, language)
        for event in CUSTOMER_EVENTS
        for channel in CHANNELS
        for language in LANGUAGES
    } - installed

    assert missing == set()


def test_the_default_texts_use_only_known_placeholders():
    texts = [text for by_language in TEXTS.values() for pair in by_language.values() for text in pair]

    assert unknown_placeholders(*texts) == set()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_reminder_has_its_own_text_not_the_first_requests(channel, language):
    reminder = default("confirmation_reminder", channel, language)

    assert reminder.body != default("confirmation_requested", channel, language).body


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_reminder_email_has_its_own_subject(language):
    reminder = default("confirmation_reminder", "email", language)

    assert reminder.subject != default("confirmation_requested", "email", language).subject


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_whatsapp_reminder_carries_confirm_and_cancel_buttons_like_the_request(language):
    reminder = default("confirmation_reminder", "whatsapp", language)

    assert [button["id"] for button in reminder.buttons] == ["confirm", "cancel"]
    assert reminder.buttons == default("confirmation_requested", "whatsapp", language).buttons


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_answer_to_a_cancel_after_confirming_offers_a_call_me_button(language):
    answer = default("reply_late_confirmed", "whatsapp", language)

    assert [button["id"] for button in answer.buttons] == ["cancel"]
    assert all(len(button["title"]) <= 20 for button in answer.buttons)  # WhatsApp's limit


@pytest.mark.parametrize("event", NEW_EVENTS)
def test_each_new_arabic_text_isolates_every_placeholder(event):
    subject, body = TEXTS[event]["ar"]

    for text in (subject, body):
        bare = text.replace(FSI + "{", "").replace("}" + PDI, "")
        assert "{" not in bare and "}" not in bare, text


def test_an_arabic_answer_renders_the_order_number_and_name_as_isolated_runs():
    order = order_in_status(OrderStatus.CONFIRMED, number="#1048", customer__name="Yasmine Alaoui")
    template = default("reply_late_confirmed", "sms", "ar")

    text = render_text(template.body, order_context(order, "ar"))

    assert f"{FSI}#1048{PDI}" in text
    assert f"{FSI}Yasmine Alaoui{PDI}" in text


@pytest.mark.parametrize("event", NEW_EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_new_template_renders_for_a_confirmed_order(event, language):
    order = order_in_status(OrderStatus.CONFIRMED)
    context = order_context(order, language)

    for channel in CHANNELS:
        assert render_text(default(event, channel, language).body, context)
    assert render_text(default(event, "email", language).subject, context)


def test_the_upgrade_installs_the_new_templates_and_keeps_a_default_someone_edited():
    MessageTemplate.objects.filter(store=None, event__in=REPLY_EVENTS).delete()
    edited = default("confirmation_reminder", "sms", "fr")
    MessageTemplate.objects.filter(pk=edited.pk).update(body="Rappel {order_number} : 1 ou 2 ?")

    migration = importlib.import_module("messaging.migrations.0008_reply_answers_and_reminder")
    migration.create_missing_default_templates(apps, None)

    assert MessageTemplate.objects.filter(store=None, event__in=REPLY_EVENTS).count() == 4 * 3 * 3
    assert default("confirmation_reminder", "sms", "fr").body == "Rappel {order_number} : 1 ou 2 ?"
