"""The ops agents' admin, driven through the Django test client."""

import datetime
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from messaging.models import Message
from orders.admin import STATUS_COLOURS
from orders.models import Order, OrderEvent, Store
from orders.services import order_transition
from orders.transitions import OrderStatus, PaymentMethod
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, UserFactory, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
COD, PREPAID = PaymentMethod.COD, PaymentMethod.PREPAID
CONFIRMATION_AGENT, OPS_AGENT, STORE_ADMIN = "Confirmation agent", "Ops agent", "Store admin"

# Session, user, the user's permissions, their groups' permissions, the store filter's choices,
# the page's count, the full count, the rows (store and customer joined), the date hierarchy's
# range and its links: none of them per row.
CHANGELIST_QUERIES = 10


# --- helpers ---------------------------------------------------------------------------------
class TransitionForms(HTMLParser):
    """Collects, for each status button form on a page, its hidden inputs by name."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self._inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and "order-transition" in (attrs.get("class") or "").split():
            self._inside = True
            self.forms.append({"action": attrs.get("action", "")})
        elif tag == "input" and self._inside and attrs.get("type") == "hidden":
            self.forms[-1][attrs["name"]] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False


def transition_forms(response) -> list[dict[str, str]]:
    parser = TransitionForms()
    parser.feed(response.content.decode())
    return parser.forms


def buttons(response) -> set[str]:
    return {form["transition"] for form in transition_forms(response)}


def flashed(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in response.context["messages"]]


def change_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def transition_url(order) -> str:
    return reverse("admin:orders_order_transition", args=[order.pk])


def changelist_url() -> str:
    return reverse("admin:orders_order_changelist")


def logged_in(client, *groups, **user_kwargs):
    user = UserFactory(groups=list(groups), stores=Store.objects.all(), **user_kwargs)
    client.force_login(user)
    return user


def press(client, order, name, *, expected_status=None, reason=""):
    """POST one status button of the order page, as the browser would, and follow the redirect."""
    data = {"transition": name, "expected_status": expected_status or order.status, "reason": reason}
    return client.post(transition_url(order), data, follow=True)


def change_form_data(response) -> dict[str, str]:
    """What the order page's change form posts back unedited: its fields and inline management forms."""
    form = response.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): management[name].value() for name in management.fields})
    return {name: "" if value is None else str(value) for name, value in data.items()}


def new_order_data(customer) -> dict[str, str]:
    """The add form of an order, filled in for ``customer``, with no items."""
    return {
        "store": str(customer.store.pk),
        "number": "#M-1",
        "external_id": "manual-1",
        "customer": str(customer.pk),
        "placed_at_0": "2025-03-14",
        "placed_at_1": "10:00:00",
        "payment_method": COD,
        "currency": "MAD",
        "total_amount": "249.00",
        "cod_amount": "249.00",
        "shipping_address": "12 Rue Ibn Battouta",
        "shipping_city": "Casablanca",
        "notes": "",
        "tags": "[]",
        "items-TOTAL_FORMS": "0",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }


def result_pks(response) -> set[int]:
    return {order.pk for order in response.context["cl"].result_list}


# --- status buttons --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("group", "status", "payment_method", "expected"),
    [
        (CONFIRMATION_AGENT, S.AWAITING_CONFIRMATION, COD, {"confirm", "cancel"}),
        (CONFIRMATION_AGENT, S.CONFIRMED, COD, {"cancel"}),
        (CONFIRMATION_AGENT, S.DELIVERY_FAILED, COD, {"reschedule_delivery"}),
        (CONFIRMATION_AGENT, S.SHIPPED, COD, set()),
        (OPS_AGENT, S.PLACED, PREPAID, {"accept", "cancel"}),
        (OPS_AGENT, S.CONFIRMED, COD, {"start_processing", "ship", "cancel"}),
        (
            OPS_AGENT,
            S.SHIPPED,
            COD,
            {"mark_in_transit", "mark_out_for_delivery", "deliver", "initiate_return"},
        ),
        (OPS_AGENT, S.DELIVERY_FAILED, COD, {"reschedule_delivery", "initiate_return"}),
        (OPS_AGENT, S.DELIVERED, COD, set()),
        (STORE_ADMIN, S.PLACED, COD, {"request_confirmation", "cancel"}),
        (STORE_ADMIN, S.DELIVERED, COD, {"refund"}),
        (STORE_ADMIN, S.CANCELLED, COD, set()),
        (STORE_ADMIN, S.CANCELLED, PREPAID, {"refund"}),
        (STORE_ADMIN, S.REFUNDED, PREPAID, set()),
    ],
)
def test_the_order_page_shows_exactly_the_buttons_the_status_and_the_group_allow(
    client, group, status, payment_method, expected
):
    order = order_in_status(status, payment_method=payment_method)
    logged_in(client, group)

    response = client.get(change_url(order))

    assert response.status_code == 200
    assert buttons(response) == expected


def test_each_button_posts_the_status_shown_to_the_transition_url(client):
    order = order_in_status(S.CONFIRMED)
    logged_in(client, OPS_AGENT)

    forms = transition_forms(client.get(change_url(order)))

    assert forms
    assert {form["expected_status"] for form in forms} == {S.CONFIRMED}
    assert {form["action"] for form in forms} == {transition_url(order)}
    assert all(form["csrfmiddlewaretoken"] for form in forms)


def test_an_order_with_no_allowed_transition_says_so_instead_of_showing_buttons(client):
    order = order_in_status(S.DELIVERED)
    logged_in(client, OPS_AGENT)

    response = client.get(change_url(order))

    assert buttons(response) == set()
    assert "No status change is available to you" in response.content.decode()


def test_a_button_moves_the_order_and_records_the_agent_on_its_timeline(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)
    agent = logged_in(client, CONFIRMATION_AGENT)

    response = press(client, order, "confirm", reason="Customer confirmed on the phone")

    order.refresh_from_db()
    assert order.status == S.CONFIRMED
    event = order.events.get(transition="confirm")
    assert (event.source, event.actor) == (OrderEvent.Source.AGENT, agent)
    assert event.reason == "Customer confirmed on the phone"
    assert response.redirect_chain == [(change_url(order), 302)]
    assert ("success", f"Order {order.number} is now confirmed.") in flashed(response)
    page = response.content.decode()
    assert "Customer confirmed on the phone" in page
    assert "Awaiting confirmation → Confirmed" in page


def test_a_confirmation_agent_cannot_ship_an_order(client):
    order = order_in_status(S.CONFIRMED)
    events_before = order.events.count()
    logged_in(client, CONFIRMATION_AGENT)

    response = press(client, order, "ship")

    assert ("error", "You do not have permission to “Mark shipped” orders.") in flashed(response)
    order.refresh_from_db()
    assert order.status == S.CONFIRMED
    assert order.events.count() == events_before


def test_an_illegal_transition_shows_the_domain_error_and_changes_nothing(client):
    order = order_in_status(S.PLACED)
    logged_in(client, STORE_ADMIN)

    response = press(client, order, "deliver")

    # Named as the agent's button names it, not by the transition's code.
    assert ("error", f"Order {order.number} cannot “Mark delivered” while it is placed.") in flashed(response)
    order.refresh_from_db()
    assert order.status == S.PLACED
    assert not order.events.exists()
    assert not Message.objects.filter(order=order).exists()


def test_an_unknown_transition_is_refused_with_the_domain_error(client):
    order = order_in_status(S.PLACED)
    logged_in(client, STORE_ADMIN)

    response = press(client, order, "teleport")

    assert ("error", "There is no order transition called “teleport”.") in flashed(response)
    order.refresh_from_db()
    assert order.status == S.PLACED


def test_a_button_pressed_on_a_stale_page_is_refused(client):
    # given an agent looking at an order awaiting confirmation
    order = order_in_status(S.AWAITING_CONFIRMATION)
    logged_in(client, CONFIRMATION_AGENT)
    # when the customer confirms it elsewhere before the agent presses "cancel"
    order_transition(order, "confirm", source=OrderEvent.Source.CUSTOMER)
    events_before = order.events.count()
    response = press(client, order, "cancel", expected_status=S.AWAITING_CONFIRMATION)

    # then the agent is told, and the order stays confirmed
    [(level, text)] = flashed(response)
    assert level == "error"
    assert "changed to confirmed since you loaded it" in text
    order.refresh_from_db()
    assert order.status == S.CONFIRMED
    assert order.events.count() == events_before


def test_a_staff_user_without_view_permission_gets_403_on_the_transition_url(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)
    logged_in(client)

    response = client.post(transition_url(order), {"transition": "cancel", "expected_status": order.status})

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION


def test_an_anonymous_post_to_the_transition_url_is_sent_to_the_login_page(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)

    response = client.post(transition_url(order), {"transition": "cancel", "expected_status": order.status})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION


def test_the_transition_url_only_accepts_post(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)
    logged_in(client, STORE_ADMIN)

    response = client.get(transition_url(order), {"transition": "cancel"})

    assert response.status_code == 405
    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION


def test_a_transition_on_a_missing_order_is_a_404(client):
    logged_in(client, STORE_ADMIN)

    response = client.post(reverse("admin:orders_order_transition", args=[999_999]), {"transition": "cancel"})

    assert response.status_code == 404


# --- order page ------------------------------------------------------------------------------
def test_status_is_never_an_editable_field_on_the_order_page(client):
    order = order_in_status(S.CONFIRMED)
    logged_in(client, OPS_AGENT)

    response = client.get(change_url(order))

    form = response.context["adminform"].form
    assert not {"status", "status_version", "status_changed_at"} & set(form.fields)
    assert 'name="status"' not in response.content.decode()


def test_saving_the_order_form_edits_details_but_never_the_status(client):
    order = order_in_status(S.CONFIRMED)
    version, events_before = order.status_version, order.events.count()
    logged_in(client, OPS_AGENT)
    data = change_form_data(client.get(change_url(order)))

    response = client.post(change_url(order), {**data, "notes": "Call before 6pm", "status": S.DELIVERED})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.notes == "Call before 6pm"
    assert (order.status, order.status_version) == (S.CONFIRMED, version)
    assert order.events.count() == events_before


def test_the_order_page_lists_the_messages_sent_about_the_order(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)
    message = order.messages.get()
    logged_in(client, CONFIRMATION_AGENT)

    response = client.get(change_url(order))

    [messages] = [i for i in response.context["inline_admin_formsets"] if i.opts.model is Message]
    assert [form.instance for form in messages.formset.forms] == [message]
    assert 'id="messages-group"' in response.content.decode()


def test_the_timeline_cannot_be_edited_from_the_order_page(client):
    order = order_in_status(S.CONFIRMED)
    logged_in(client, is_superuser=True)

    response = client.get(change_url(order))

    timeline = {inline.opts.model: inline for inline in response.context["inline_admin_formsets"]}
    for model in (OrderEvent, Message):
        assert not timeline[model].has_add_permission
        assert not timeline[model].has_change_permission
        assert not timeline[model].has_delete_permission


def test_orders_cannot_be_deleted_from_the_admin(client):
    order = order_in_status(S.CANCELLED)
    logged_in(client, is_superuser=True)

    response = client.post(reverse("admin:orders_order_delete", args=[order.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_a_store_admin_adds_an_order_which_starts_placed_whatever_status_is_posted(client):
    customer = CustomerFactory()
    logged_in(client, STORE_ADMIN)

    response = client.post(
        reverse("admin:orders_order_add"), {**new_order_data(customer), "status": S.SHIPPED}
    )

    assert response.status_code == 302
    order = Order.objects.get(external_id="manual-1")
    assert order.customer == customer
    first = order.events.order_by("pk").first()
    assert (first.type, first.to_status) == ("placed", S.PLACED)
    # From there the store's rules made its first move: a COD order is asked to confirm.
    assert order.status == S.AWAITING_CONFIRMATION


def test_an_order_added_in_admin_starts_its_timeline_with_who_placed_it(client):
    customer = CustomerFactory()
    user = logged_in(client, STORE_ADMIN)

    client.post(reverse("admin:orders_order_add"), new_order_data(customer))

    event = Order.objects.get(external_id="manual-1").events.get(type="placed")
    assert (event.type, event.to_status, event.source, event.actor) == ("placed", S.PLACED, "agent", user)


def test_an_order_cannot_be_added_for_another_stores_customer(client):
    customer = CustomerFactory()
    other_store = StoreFactory()
    logged_in(client, STORE_ADMIN)

    response = client.post(
        reverse("admin:orders_order_add"), {**new_order_data(customer), "store": other_store.pk}
    )

    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors
    assert not Order.objects.filter(external_id="manual-1").exists()


# --- order list ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed", ["0612345678", "06 12 34 56 78", "06-12-34-56-78", "+212612345678", "00212612345678"]
)
def test_searching_a_phone_number_as_typed_finds_the_order(client, typed):
    order = OrderFactory(customer__phone_raw="0612345678")
    OrderFactory(customer__phone_raw="0698765432")
    logged_in(client, OPS_AGENT)

    response = client.get(changelist_url(), {"q": typed})

    assert order.customer.phone == "+212612345678"
    assert result_pks(response) == {order.pk}


def test_a_local_phone_number_is_read_with_the_stores_own_region(client):
    french = StoreFactory(slug="boutique-paris", default_phone_region="FR", currency="EUR")
    order = OrderFactory(store=french, customer__phone_raw="06 12 34 56 78")
    logged_in(client, OPS_AGENT)

    response = client.get(changelist_url(), {"q": "0612345678"})

    assert order.customer.phone == "+33612345678"
    assert order.pk in result_pks(response)


def test_searching_an_email_finds_the_order(client):
    order = OrderFactory(customer__email="amina@example.ma")
    OrderFactory()
    logged_in(client, OPS_AGENT)

    response = client.get(changelist_url(), {"q": "amina@example.ma"})

    assert result_pks(response) == {order.pk}


def test_searching_the_stores_order_id_finds_the_order(client):
    order = OrderFactory(external_id="shopify-998877")
    OrderFactory()
    logged_in(client, OPS_AGENT)

    response = client.get(changelist_url(), {"q": "shopify-998877"})

    assert result_pks(response) == {order.pk}


def test_the_order_list_filters_by_status(client):
    confirmed = order_in_status(S.CONFIRMED)
    order_in_status(S.PLACED)
    logged_in(client, OPS_AGENT)

    response = client.get(changelist_url(), {"status__exact": S.CONFIRMED})

    assert result_pks(response) == {confirmed.pk}


def test_the_order_list_shows_each_status_as_a_coloured_badge(client):
    order_in_status(S.DELIVERED)
    logged_in(client, OPS_AGENT)

    page = client.get(changelist_url()).content.decode()

    assert f"background:{STATUS_COLOURS[S.DELIVERED]}" in page
    assert ">Delivered</span>" in page


def test_every_status_has_a_badge_colour():
    assert set(STATUS_COLOURS) == set(S.values)


@pytest.mark.parametrize("orders", [3, 30])
def test_the_order_list_runs_the_same_queries_however_many_orders_it_shows(
    client, django_assert_num_queries, orders
):
    placed_at = datetime.datetime(2025, 3, 14, 10, 0, tzinfo=datetime.UTC)
    for index in range(orders):
        method = COD if index % 2 else PREPAID
        OrderFactory(placed_at=placed_at, payment_method=method)  # each with its own store and customer
    logged_in(client, OPS_AGENT)

    with django_assert_num_queries(CHANGELIST_QUERIES):
        response = client.get(changelist_url())

    assert len(response.context["cl"].result_list) == orders


# --- stores, customers, messages -------------------------------------------------------------
@pytest.mark.parametrize(("groups", "is_superuser"), [([STORE_ADMIN], False), ([], True)])
def test_the_store_page_never_shows_the_webhook_secret(client, groups, is_superuser):
    store = StoreFactory()
    logged_in(client, *groups, is_superuser=is_superuser)

    responses = [
        client.get(reverse("admin:orders_store_change", args=[store.pk])),
        client.get(reverse("admin:orders_store_changelist")),
    ]

    for response in responses:
        assert response.status_code == 200
        page = response.content.decode()
        assert store.webhook_secret not in page
        assert "webhook_secret" not in page


def test_the_customer_page_edits_the_phone_as_given_and_shows_its_e164_form(client):
    customer = CustomerFactory(phone_raw="0612345678")
    logged_in(client, STORE_ADMIN)

    response = client.get(reverse("admin:orders_customer_change", args=[customer.pk]))

    form = response.context["adminform"].form
    assert "phone_raw" in form.fields
    assert "phone" not in form.fields
    assert "+212612345678" in response.content.decode()


def test_a_customer_cannot_take_a_phone_number_another_customer_of_the_store_has(client):
    taken = CustomerFactory(phone_raw="0612345678")
    customer = CustomerFactory(store=taken.store)
    logged_in(client, STORE_ADMIN)
    data = {"name": customer.name, "phone_raw": "+212 6 12 34 56 78", "email": "", "language": "fr"}

    response = client.post(reverse("admin:orders_customer_change", args=[customer.pk]), data)

    assert response.status_code == 200
    assert "+212612345678" in str(response.context["adminform"].form.errors["phone_raw"])
    customer.refresh_from_db()
    assert customer.phone != taken.phone


def test_the_customer_list_finds_a_locally_typed_phone(client):
    customer = CustomerFactory(phone_raw="+212612345678")
    CustomerFactory()
    logged_in(client, OPS_AGENT)

    response = client.get(reverse("admin:orders_customer_changelist"), {"q": "0612345678"})

    assert {c.pk for c in response.context["cl"].result_list} == {customer.pk}


def test_the_customer_list_filters_customers_whose_phone_could_not_be_read(client):
    unreadable = CustomerFactory(phone_raw="12")
    CustomerFactory()
    logged_in(client, OPS_AGENT)

    response = client.get(reverse("admin:orders_customer_changelist"), {"phone": "unreadable"})

    assert {c.pk for c in response.context["cl"].result_list} == {unreadable.pk}


def test_the_message_admin_lists_messages_but_cannot_change_them(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)
    message = order.messages.get()
    logged_in(client, OPS_AGENT)

    listing = client.get(reverse("admin:messaging_message_changelist"), {"status__exact": message.status})
    add = client.get(reverse("admin:messaging_message_add"))
    change = client.post(reverse("admin:messaging_message_change", args=[message.pk]), {"status": "sent"})
    delete = client.post(reverse("admin:messaging_message_delete", args=[message.pk]), {"post": "yes"})

    assert listing.status_code == 200
    assert [m.pk for m in listing.context["cl"].result_list] == [message.pk]
    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert Message.objects.get(pk=message.pk).status == message.status
