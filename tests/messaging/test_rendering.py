"""Rendering: money in each language, strict placeholders, and which template a message uses."""

from decimal import Decimal

import pytest

from messaging.models import Channel, MessageTemplate
from messaging.services.rendering import (
    FSI,
    PDI,
    RenderError,
    format_money,
    order_context,
    render_text,
    template_for,
    unknown_placeholders,
)
from tests.factories import OrderFactory, StoreFactory

# An event with no default templates, so each test says exactly which templates exist.
EVENT = "test_event"
SMS = Channel.SMS


def template(store=None, language="fr", body="", channel=SMS) -> MessageTemplate:
    return MessageTemplate.objects.create(
        store=store, event=EVENT, channel=channel, language=language, body=body or f"{language} body"
    )


# --- money ------------------------------------------------------------------------------------
def test_english_money_groups_thousands_with_a_comma_and_uses_a_decimal_point():
    assert format_money(Decimal("1249.5"), "MAD", "en") == "1,249.50 MAD"


def test_french_money_groups_thousands_with_a_narrow_no_break_space_and_uses_a_decimal_comma():
    assert format_money(Decimal("1249.5"), "MAD", "fr") == "1\u202f249,50 MAD"


def test_arabic_money_is_written_with_western_digits_like_english():
    assert format_money(Decimal("1249.5"), "MAD", "ar") == "1,249.50 MAD"


def test_money_under_a_thousand_has_no_group_separator_in_any_language():
    assert [format_money(Decimal("249"), "MAD", lang) for lang in ("en", "fr", "ar")] == [
        "249.00 MAD",
        "249,00 MAD",
        "249.00 MAD",
    ]


# --- strict rendering ------------------------------------------------------------------------
def test_render_text_fills_every_placeholder():
    text = render_text(
        "Bonjour {customer_name}, commande {order_number}",
        {"customer_name": "Amina", "order_number": "#1042"},
    )

    assert text == "Bonjour Amina, commande #1042"


def test_an_arabic_text_isolates_each_value_so_order_numbers_and_amounts_keep_their_order():
    text = render_text(
        "طلبك {order_number}: ستدفع {cod_amount}",
        {"order_number": "#1048", "cod_amount": "1,249.00 MAD"},
        "ar",
    )

    assert text == f"طلبك {FSI}#1048{PDI}: ستدفع {FSI}1,249.00 MAD{PDI}"


def test_a_french_text_gets_no_isolates():
    text = render_text("Commande {order_number}", {"order_number": "#1048"}, "fr")

    assert text == "Commande #1048"


def test_an_arabic_value_the_template_already_isolates_is_isolated_once():
    text = render_text(f"الطلب {FSI}{{order_number}}{PDI}", {"order_number": "#1048"}, "ar")

    assert text == f"الطلب {FSI}#1048{PDI}"


def test_render_text_refuses_a_placeholder_without_a_value_instead_of_rendering_part_of_the_text():
    context = {"customer_name": "Amina", "tracking_link": None}

    with pytest.raises(RenderError, match="no value for: tracking_link"):
        render_text("Bonjour {customer_name}, suivez {tracking_link}", context)


def test_render_text_treats_an_empty_value_as_missing():
    with pytest.raises(RenderError, match="no value for: carrier"):
        render_text("Livré par {carrier}", {"carrier": ""})


def test_render_text_refuses_an_unknown_placeholder():
    with pytest.raises(RenderError, match="unknown placeholder"):
        render_text("Hello {first_name}", {"first_name": "Amina"})


def test_render_text_refuses_unbalanced_braces():
    with pytest.raises(RenderError, match="not a valid template"):
        render_text("Hello {customer_name", {"customer_name": "Amina"})


def test_doubled_braces_are_literal_braces():
    assert render_text("{{ {order_number} }}", {"order_number": "#7"}) == "{ #7 }"


def test_unknown_placeholders_looks_at_every_text_given():
    assert unknown_placeholders("{customer_name} {nom}", "{order_number}", "{prenom}") == {"nom", "prenom"}


# --- choosing a template ---------------------------------------------------------------------
@pytest.mark.django_db
def test_a_stores_own_template_is_used_over_the_default():
    store = StoreFactory()
    template(store=None, language="fr")
    own = template(store=store, language="fr")

    assert template_for(store, EVENT, SMS, "fr") == own


@pytest.mark.django_db
def test_another_stores_template_is_never_used():
    store, other = StoreFactory(), StoreFactory()
    default = template(store=None, language="fr")
    template(store=other, language="fr")

    assert template_for(store, EVENT, SMS, "fr") == default


@pytest.mark.django_db
def test_the_template_in_the_customers_language_is_used():
    store = StoreFactory()
    template(language="fr")
    arabic = template(language="ar")

    assert template_for(store, EVENT, SMS, "ar") == arabic


@pytest.mark.django_db
def test_without_the_customers_language_the_french_template_is_used():
    store = StoreFactory()
    template(language="en")
    french = template(language="fr")

    assert template_for(store, EVENT, SMS, "ar") == french


@pytest.mark.django_db
def test_without_the_customers_language_or_french_the_english_template_is_used():
    store = StoreFactory()
    english = template(language="en")

    assert template_for(store, EVENT, SMS, "ar") == english


@pytest.mark.django_db
def test_the_customers_language_wins_over_the_stores_own_template_in_another_language():
    # Language is chosen first, the store's own template second: an Arabic-speaking customer
    # gets the default Arabic text rather than the store's French one.
    store = StoreFactory()
    template(store=store, language="fr")
    default_arabic = template(store=None, language="ar")

    assert template_for(store, EVENT, SMS, "ar") == default_arabic


@pytest.mark.django_db
def test_no_template_for_the_event_and_channel_gives_none():
    store = StoreFactory()
    template(language="fr", channel=Channel.EMAIL)

    assert template_for(store, EVENT, SMS, "fr") is None


# --- the order's values ----------------------------------------------------------------------
@pytest.mark.django_db
def test_an_order_not_yet_shipped_has_no_tracking_link_so_a_template_using_it_cannot_render():
    order = OrderFactory(total_amount=Decimal("1249.00"))
    context = order_context(order, "fr")

    assert context["tracking_link"] is None
    assert context["cod_amount"] == "1\u202f249,00 MAD"
    with pytest.raises(RenderError, match="tracking_link"):
        render_text("Suivez {tracking_link}", context)
