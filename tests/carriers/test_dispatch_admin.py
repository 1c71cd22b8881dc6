"""Dispatch from admin: "Create parcels at …" on the order list, the batch's progress page and
labels, cancelling a parcel, and "Mark shipped" with the parcel's carrier and tracking number."""

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from carriers.adapters.sandbox import SandboxCarrier
from carriers.models import DispatchBatch, SandboxParcel, Shipment
from carriers.services import dispatch_batch_create, dispatch_batch_run, shipment_create
from messaging.models import Message
from orders.transitions import OrderStatus
from tests.factories import CarrierAccountFactory, UserFactory, grant, order_in_status

pytestmark = pytest.mark.django_db

ORDER_LIST = reverse("admin:orders_order_changelist")


@pytest.fixture
def account():
    return CarrierAccountFactory(name="Casa depot")


def agent_of(store, *perms):
    user = UserFactory(stores=[store])
    return grant(user, "orders.view_order", "orders.change_order", *perms)


@pytest.fixture
def dispatcher(client, account):
    user = agent_of(account.store, "carriers.add_dispatchbatch", "carriers.view_dispatchbatch")
    client.force_login(user)
    return user


def action_name(account) -> str:
    return f"dispatch_to_account_{account.pk}"


def offered_actions(client) -> dict:
    form = client.get(ORDER_LIST).context["action_form"]  # None: no action at all
    return dict(form.fields["action"].choices) if form is not None else {}


def dispatch(client, account, orders, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            ORDER_LIST, {"action": action_name(account), "_selected_action": [order.pk for order in orders]}
        )


# --- the order list's action ------------------------------------------------------------------
def test_the_order_list_offers_one_create_parcels_action_per_account_of_the_users_stores(
    client, dispatcher, account
):
    CarrierAccountFactory(name="Another store's depot")  # another store's
    CarrierAccountFactory(store=account.store, name="Switched off", enabled=False)

    actions = offered_actions(client)

    assert actions[action_name(account)] == "Create parcels at Casa depot (Sandbox)"
    assert [name for name in actions if name.startswith("dispatch_to_account_")] == [action_name(account)]


def test_without_the_dispatch_permission_no_create_parcels_action_is_offered(client, account):
    client.force_login(agent_of(account.store))

    assert action_name(account) not in offered_actions(client)


def test_without_the_permission_posting_the_action_creates_nothing(
    client, account, django_capture_on_commit_callbacks
):
    client.force_login(agent_of(account.store))
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)

    dispatch(client, account, [order], django_capture_on_commit_callbacks)

    assert not DispatchBatch.objects.exists()
    assert not Shipment.objects.filter(order=order).exists()


def test_another_stores_account_cannot_be_used_even_by_its_action_name(
    client, dispatcher, django_capture_on_commit_callbacks
):
    theirs = CarrierAccountFactory()
    order = order_in_status(OrderStatus.CONFIRMED, store=theirs.store)

    dispatch(client, theirs, [order], django_capture_on_commit_callbacks)

    assert not DispatchBatch.objects.exists()


def test_the_action_creates_the_parcels_after_commit_and_opens_the_batch_page(
    client, dispatcher, account, django_capture_on_commit_callbacks
):
    orders = [order_in_status(OrderStatus.CONFIRMED, store=account.store) for _ in range(2)]
    waiting = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=account.store)

    response = dispatch(client, account, [*orders, waiting], django_capture_on_commit_callbacks)

    batch = DispatchBatch.objects.get()
    assert response.url == reverse("admin:carriers_dispatchbatch_change", args=[batch.pk])
    assert (batch.status, batch.created_by, batch.created_count, batch.skipped_count) == (
        "done",
        dispatcher,
        2,
        1,
    )
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.SHIPPED


# --- the batch's page -------------------------------------------------------------------------
def test_the_batch_page_shows_the_counts_each_orders_result_and_the_labels_link(client, dispatcher, account):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    waiting = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=account.store)
    batch = dispatch_batch_run(dispatch_batch_create(account, [order, waiting], dispatcher).pk)
    shipment = Shipment.objects.get(order=order)

    page = client.get(reverse("admin:carriers_dispatchbatch_change", args=[batch.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'http-equiv="refresh"' not in html
    assert reverse("admin:orders_order_change", args=[order.pk]) in html
    assert reverse("admin:carriers_shipment_change", args=[shipment.pk]) in html
    assert shipment.tracking_number in html
    assert "the order is not confirmed or processing (it is awaiting confirmation)" in html
    assert reverse("admin:carriers_dispatchbatch_labels", args=[batch.pk]) in html


def test_a_running_batch_page_reloads_itself_and_offers_no_labels_yet(client, dispatcher, account):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    batch = dispatch_batch_create(account, [order], dispatcher)

    html = client.get(reverse("admin:carriers_dispatchbatch_change", args=[batch.pk])).content.decode()

    assert 'http-equiv="refresh"' in html
    assert reverse("admin:carriers_dispatchbatch_labels", args=[batch.pk]) not in html
    assert 'value="0" max="1"' in html


def test_the_labels_download_is_one_pdf_with_a_page_per_parcel(client, dispatcher, account):
    orders = [order_in_status(OrderStatus.CONFIRMED, store=account.store) for _ in range(3)]
    batch = dispatch_batch_run(dispatch_batch_create(account, orders, dispatcher).pk)

    response = client.get(reverse("admin:carriers_dispatchbatch_labels", args=[batch.pk]))

    assert response["Content-Type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(response.content)).pages) == 3


def test_another_stores_batch_and_its_labels_are_not_found(client, dispatcher):
    theirs = CarrierAccountFactory()
    order = order_in_status(OrderStatus.CONFIRMED, store=theirs.store)
    batch = dispatch_batch_run(dispatch_batch_create(theirs, [order], None).pk)

    assert client.get(reverse("admin:carriers_dispatchbatch_change", args=[batch.pk])).status_code == 404
    assert client.get(reverse("admin:carriers_dispatchbatch_labels", args=[batch.pk])).status_code == 404


def test_without_the_view_permission_the_batch_page_is_not_shown(client, account):
    client.force_login(agent_of(account.store))
    batch = dispatch_batch_create(account, [], None)

    response = client.get(reverse("admin:carriers_dispatchbatch_change", args=[batch.pk]))

    assert response.status_code in (403, 404)


# --- cancelling a parcel ----------------------------------------------------------------------
def cancel(client, shipments):
    return client.post(
        reverse("admin:carriers_shipment_changelist"),
        {"action": "cancel_at_carrier", "_selected_action": [shipment.pk for shipment in shipments]},
        follow=True,
    )


@pytest.fixture
def shipment_changer(client, account):
    user = agent_of(account.store, "carriers.view_shipment", "carriers.change_shipment")
    client.force_login(user)
    return user


def test_cancelling_a_parcel_at_the_carrier_voids_the_shipment(client, shipment_changer, account):
    shipment = shipment_create(order_in_status(OrderStatus.CONFIRMED, store=account.store), account)

    response = cancel(client, [shipment])

    shipment.refresh_from_db()
    assert shipment.create_status == Shipment.CreateStatus.CANCELLED
    assert SandboxParcel.objects.get(tracking_number=shipment.tracking_number).cancelled is True
    assert "Parcels cancelled at the carrier: 1." in response.content.decode()


def test_a_parcel_the_carrier_will_not_cancel_is_said_and_kept(client, shipment_changer, account):
    shipment = shipment_create(order_in_status(OrderStatus.CONFIRMED, store=account.store), account)
    SandboxCarrier().record_event(shipment.tracking_number, "PICKED_UP")

    response = cancel(client, [shipment])

    shipment.refresh_from_db()
    assert shipment.create_status == Shipment.CreateStatus.CREATED
    assert "the parcel has left: it cannot be cancelled" in response.content.decode()


def test_without_the_change_permission_parcels_cannot_be_cancelled(client, account):
    client.force_login(agent_of(account.store, "carriers.view_shipment"))
    shipment = shipment_create(order_in_status(OrderStatus.CONFIRMED, store=account.store), account)

    cancel(client, [shipment])

    shipment.refresh_from_db()
    assert shipment.create_status == Shipment.CreateStatus.CREATED


# --- Mark shipped with carrier and tracking number ------------------------------------------------
def mark_shipped(client, order, django_capture_on_commit_callbacks, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            reverse("admin:orders_order_transition", args=[order.pk]),
            {"transition": "ship", "expected_status": order.status, **fields},
        )


@pytest.fixture
def shipper(client, account):
    user = agent_of(account.store, "orders.ship_order")
    client.force_login(user)
    return user


def test_the_ship_button_asks_for_carrier_and_tracking_number_suggesting_the_stores_carriers(
    client, shipper, account
):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)

    html = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    assert 'name="tracking_number"' in html
    assert 'name="tracking_url"' in html
    assert '<option value="Sandbox">' in html


def test_marking_shipped_records_the_parcel_and_tells_the_customer_the_tracking_link(
    client, shipper, account, django_capture_on_commit_callbacks
):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    link = "https://track.example.ma/CX123456789MA"

    mark_shipped(
        client,
        order,
        django_capture_on_commit_callbacks,
        carrier="Amana",
        tracking_number="CX123456789MA",
        tracking_url=link,
    )

    order.refresh_from_db()
    shipment = Shipment.objects.get(order=order)
    shipped = order.events.get(type="shipped")
    assert order.status == OrderStatus.SHIPPED
    assert (shipment.carrier, shipment.tracking_number, shipment.tracking_url) == (
        "Amana",
        "CX123456789MA",
        link,
    )
    assert shipped.payload == {"carrier": "Amana", "tracking_number": "CX123456789MA", "tracking_url": link}
    message = Message.objects.filter(order=order, event="order_shipped").exclude(body="").first()
    assert message is not None and link in message.body


def test_a_carrier_named_like_one_of_the_stores_accounts_links_the_shipment_to_it(
    client, shipper, account, django_capture_on_commit_callbacks
):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)

    mark_shipped(client, order, django_capture_on_commit_callbacks, carrier="Sandbox", tracking_number="SBX1")

    assert Shipment.objects.get(order=order).account == account


def test_a_bad_tracking_url_is_refused_and_nothing_moves(
    client, shipper, account, django_capture_on_commit_callbacks
):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)

    mark_shipped(
        client, order, django_capture_on_commit_callbacks, tracking_number="X1", tracking_url="not a url"
    )

    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert not Shipment.objects.filter(order=order).exists()


def test_marking_shipped_without_a_parcel_still_works_and_the_message_goes_untracked(
    client, shipper, account, django_capture_on_commit_callbacks
):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)

    mark_shipped(client, order, django_capture_on_commit_callbacks)

    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert not Shipment.objects.filter(order=order).exists()
    assert Message.objects.filter(order=order, template__event="order_shipped_untracked").exists()


def test_the_labels_of_a_running_batch_are_not_offered_yet(client, dispatcher, account):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    batch = dispatch_batch_create(account, [order], dispatcher)

    response = client.get(reverse("admin:carriers_dispatchbatch_labels", args=[batch.pk]))

    assert response.url == reverse("admin:carriers_dispatchbatch_change", args=[batch.pk])
