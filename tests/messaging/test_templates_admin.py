"""Message templates in the admin: what the form refuses, and the live preview for an order."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from messaging.models import MessageTemplate
from orders.models import Customer, Store
from orders.transitions import OrderStatus
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, UserFactory, order_in_status

pytestmark = pytest.mark.django_db

ADD_URL = "admin:messaging_messagetemplate_add"
PREVIEW_URL = "admin:messaging_messagetemplate_preview"


# --- helpers ---------------------------------------------------------------------------------
def user_with(*perms: str, **kwargs):
    user = UserFactory(**kwargs, stores=Store.objects.all())
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def store_admin(client):
    user = user_with(
        "messaging.view_messagetemplate",
        "messaging.add_messagetemplate",
        "messaging.change_messagetemplate",
        "orders.view_order",
    )
    client.force_login(user)
    return user


@pytest.fixture
def superuser(client):
    """Only superusers edit the default templates (every store's): members see them read-only."""
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    return user


def template_data(store, /, **overrides) -> dict[str, str]:
    """The add form of a store's own template, filled in with a valid SMS text."""
    data = {
        "store": str(store.pk),
        "event": "order_shipped",
        "channel": "sms",
        "language": "fr",
        "purpose": "transactional",
        "subject": "",
        "body": "Bonjour {customer_name}, votre commande {order_number} est partie.",
        "whatsapp_template_name": "",
        "whatsapp_language_code": "",
        "body_parameters": "[]",
        "buttons": "[]",
        "twilio_content_sid": "",
        "sendgrid_template_id": "",
    }
    data.update(overrides)
    return data


def add_template(client, store, /, **overrides):
    return client.post(reverse(ADD_URL), template_data(store, **overrides))


def field_errors(response, name: str) -> list[str]:
    return response.context["adminform"].form.errors.get(name, [])


def preview(client, order_ref, **fields):
    data = {"language": "fr", "subject": "", "body": "", "body_parameters": "[]", "order": order_ref}
    data.update(fields)
    return client.post(reverse(PREVIEW_URL), data)


# --- what the form refuses -------------------------------------------------------------------
def test_a_template_with_an_unknown_placeholder_is_refused_with_the_allowed_ones_listed(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, body="Bonjour {prenom}, commande {order_number}")

    [error] = field_errors(response, "body")
    assert "Unknown placeholder(s): {prenom}." in error
    assert "Allowed: {customer_name}, {order_number}," in error
    assert not MessageTemplate.objects.filter(store=store).exists()


def test_an_unknown_placeholder_in_the_subject_is_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, channel="email", subject="Commande {numero}")

    assert "Unknown placeholder(s): {numero}." in field_errors(response, "subject")[0]
    assert not MessageTemplate.objects.filter(store=store).exists()


def test_a_template_with_unbalanced_braces_is_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, body="Bonjour {customer_name, merci")

    assert field_errors(response, "body") == [
        "Braces do not match. Write placeholders as {name}, and a literal brace as {{ or }}."
    ]
    assert not MessageTemplate.objects.filter(store=store).exists()


def test_a_placeholder_with_a_format_is_refused_because_it_could_not_be_rendered(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, body="À payer : {cod_amount:d} ({customer_name!r})")

    assert field_errors(response, "body") == [
        "Placeholders take no format or conversion: {cod_amount:d}, {customer_name!r}."
    ]


def test_empty_braces_are_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, body="Bonjour {}")

    assert "Empty braces {} are not a placeholder" in field_errors(response, "body")[0]


def test_an_unknown_body_parameter_is_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, channel="whatsapp", body_parameters='["order_number", "prenom"]')

    assert field_errors(response, "body_parameters") == [
        "Unknown placeholder 'prenom'. Allowed: customer_name, order_number, items, cod_amount, "
        "total_amount, carrier, tracking_link, expected_date, store_name, payment_link."
    ]


def test_a_body_parameter_written_with_braces_is_refused_with_how_to_write_it(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, channel="whatsapp", body_parameters='["{order_number}"]')

    assert field_errors(response, "body_parameters") == [
        'Write {order_number} without braces, e.g. "order_number".'
    ]


def test_a_button_title_longer_than_twenty_characters_is_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])
    buttons = [{"id": "confirm", "title": "Je confirme ma commande"}]

    response = add_template(client, store, channel="whatsapp", buttons=json.dumps(buttons))

    assert field_errors(response, "buttons") == [
        "Button 1's title 'Je confirme ma commande' is 23 characters; at most 20."
    ]


def test_more_than_three_buttons_are_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])
    buttons = [{"id": f"b{n}", "title": f"Choix {n}"} for n in range(4)]

    response = add_template(client, store, channel="whatsapp", buttons=json.dumps(buttons))

    assert field_errors(response, "buttons") == ["At most 3 buttons; there are 4."]


def test_a_button_without_an_id_is_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, channel="whatsapp", buttons='[{"title": "Confirmer"}]')

    assert field_errors(response, "buttons") == [
        "Button 1 needs an id (what the reply carries back, e.g. confirm)."
    ]


def test_buttons_on_an_sms_template_are_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, channel="sms", buttons='[{"id": "confirm", "title": "Confirmer"}]')

    assert field_errors(response, "buttons") == ["Buttons are only sent on WhatsApp."]


def test_an_email_template_without_a_subject_is_refused(client, store_admin):
    store = StoreFactory(members=[store_admin])

    response = add_template(client, store, channel="email", subject="")

    assert field_errors(response, "subject") == ["An e-mail template needs a subject."]


def test_a_second_default_template_for_the_same_event_channel_and_language_is_refused(client, superuser):
    # The defaults are installed by a migration; store=None rows must still be unique.
    response = add_template(
        client,
        StoreFactory(),
        store="",
        event="order_shipped",
        channel="sms",
        language="fr",
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors()
    assert (
        MessageTemplate.objects.filter(
            store=None, event="order_shipped", channel="sms", language="fr"
        ).count()
        == 1
    )


def test_a_good_template_is_saved(client, store_admin):
    store = StoreFactory(members=[store_admin])
    buttons = [{"id": "confirm", "title": "Confirmer"}, {"id": "cancel", "title": "Annuler"}]

    response = add_template(
        client,
        store,
        event="confirmation_requested",
        channel="whatsapp",
        body="Bonjour {customer_name}, confirmez {order_number} ({cod_amount}) ? {{oui/non}}",
        whatsapp_template_name="order_confirmation",
        body_parameters='["customer_name", "order_number"]',
        buttons=json.dumps(buttons),
    )

    assert response.status_code == 302
    saved = MessageTemplate.objects.get(store=store)
    assert (saved.event, saved.channel, saved.language) == ("confirmation_requested", "whatsapp", "fr")
    assert saved.body_parameters == ["customer_name", "order_number"]
    assert saved.buttons == buttons


def test_an_arabic_template_is_edited_right_to_left(client, superuser):
    arabic = MessageTemplate.objects.get(store=None, event="order_shipped", channel="sms", language="ar")

    response = client.get(reverse("admin:messaging_messagetemplate_change", args=[arabic.pk]))

    form = response.context["adminform"].form
    assert form.fields["body"].widget.attrs["dir"] == "rtl"
    assert 'dir="rtl"' in str(form["body"])


def test_a_french_template_lets_the_browser_choose_the_direction(client, superuser):
    french = MessageTemplate.objects.get(store=None, event="order_shipped", channel="sms", language="fr")

    response = client.get(reverse("admin:messaging_messagetemplate_change", args=[french.pk]))

    assert response.context["adminform"].form.fields["body"].widget.attrs["dir"] == "auto"


def test_the_template_page_has_the_preview_panel(client, superuser):
    french = MessageTemplate.objects.get(store=None, event="order_shipped", channel="sms", language="fr")

    response = client.get(reverse("admin:messaging_messagetemplate_change", args=[french.pk]))

    page = response.content.decode()
    assert 'id="template-preview-order"' in page
    assert f'data-preview-url="{reverse(PREVIEW_URL)}"' in page


def test_the_template_list_filters_by_language(client, store_admin):
    response = client.get(
        reverse("admin:messaging_messagetemplate_changelist"), {"language": "ar", "channel": "sms"}
    )

    languages = {template.language for template in response.context["cl"].result_list}
    assert response.status_code == 200
    assert languages == {"ar"}


# --- live preview ----------------------------------------------------------------------------
def test_the_preview_renders_the_unsaved_text_for_an_order_given_by_number(client, store_admin):
    order = OrderFactory(store__members=[store_admin], number="#2042", customer__name="Amina Benali")

    response = preview(client, "2042", body="Bonjour {customer_name}, à payer : {cod_amount}.")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Bonjour Amina Benali, à payer : 249,00 MAD." in page
    assert f"Order {order.number} of {order.store}, in Français." in page


def test_the_preview_finds_an_order_by_its_id(client, store_admin):
    order = OrderFactory(store__members=[store_admin], customer__name="Youssef")

    response = preview(client, str(order.pk), body="Merci {customer_name}")

    assert "Merci Youssef" in response.content.decode()


def test_the_preview_renders_the_subject_and_each_body_parameter(client, store_admin):
    OrderFactory(store__members=[store_admin], number="#77")

    response = preview(
        client, "#77", subject="Commande {order_number}", body="x", body_parameters='["order_number"]'
    )

    parts = response.context["parts"]
    assert [(part["label"], part.get("text")) for part in parts] == [
        ("Subject", "Commande #77"),
        ("Body", "x"),
        ("Parameter {{1}}", "#77"),
    ]


def test_the_preview_says_which_placeholder_has_no_value_for_the_order(client, store_admin):
    order = order_in_status(OrderStatus.CONFIRMED, number="#3003", store__members=[store_admin])

    response = preview(client, str(order.pk), body="Suivez votre colis : {tracking_link}")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Cannot render: {tracking_link} has no value for order #3003" in page
    assert "known once the order has shipped" in page
    assert "Suivez votre colis" not in page  # nothing half-rendered


def test_the_preview_in_arabic_is_right_to_left(client, store_admin):
    OrderFactory(store__members=[store_admin], number="#4004", customer__name="سعيد")

    response = preview(client, "#4004", language="ar", body="مرحبا {customer_name}، طلبك {order_number}")

    page = response.content.decode()
    assert '<div class="template-preview-result" dir="rtl" lang="ar">' in page
    assert "مرحبا سعيد، طلبك #4004" in page


def test_the_preview_renders_amounts_in_the_templates_language_not_the_customers(client, store_admin):
    customer = CustomerFactory(store__members=[store_admin], language=Customer.Language.ARABIC)
    OrderFactory(number="#5005", store=customer.store, customer=customer, total_amount="1249.00")

    response = preview(client, "#5005", language="fr", body="{cod_amount}")

    assert response.context["parts"][0]["text"] == "1\u202f249,00 MAD"


def test_the_preview_of_a_stores_template_only_looks_at_that_stores_orders(client, store_admin):
    store = StoreFactory(members=[store_admin])
    OrderFactory(store__members=[store_admin], number="#6006")  # another store of the same admin

    response = preview(client, "#6006", store=str(store.pk), body="x")

    assert response.status_code == 400
    assert "No order of this template&#x27;s store has the id or number #6006." in response.content.decode()


def test_the_preview_of_an_unknown_order_says_so(client, store_admin):
    response = preview(client, "#nope", body="x")

    assert response.status_code == 400
    assert "No order has the id or number #nope." in response.content.decode()


def test_the_preview_reports_an_unknown_placeholder_in_the_unsaved_text(client, store_admin):
    OrderFactory(store__members=[store_admin], number="#7007")

    response = preview(client, "#7007", body="Bonjour {prenom}")

    assert "Unknown placeholder(s): {prenom}." in response.context["parts"][0]["error"]


def test_a_view_only_user_previews_the_saved_text(client):
    viewer = user_with("messaging.view_messagetemplate", "orders.view_order")
    client.force_login(viewer)
    saved = MessageTemplate.objects.get(store=None, event="order_confirmed", channel="sms", language="en")
    OrderFactory(number="#8008", customer__name="Karim", store__members=[viewer])

    response = client.post(reverse(PREVIEW_URL), {"order": "#8008", "template": saved.pk})

    assert response.context["parts"][0]["text"].startswith("Thank you Karim, your order #8008 is confirmed.")


def test_the_preview_needs_the_permission_to_view_templates(client):
    client.force_login(user_with("orders.view_order"))
    OrderFactory(number="#9009")

    response = preview(client, "#9009", body="{customer_name}")

    assert response.status_code == 403


def test_the_preview_needs_the_permission_to_view_orders(client):
    client.force_login(user_with("messaging.view_messagetemplate"))
    OrderFactory(number="#9010")

    response = preview(client, "#9010", body="{customer_name}")

    assert response.status_code == 403


def test_the_preview_only_answers_posts(client, store_admin):
    response = client.get(reverse(PREVIEW_URL), {"order": "1", "body": "x"})

    assert response.status_code == 405
