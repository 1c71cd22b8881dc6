"""The Shiprocket adapter against its loopback fake (tests/fakes/carrier_shiprocket.py)."""

import socket
from datetime import timedelta
from decimal import Decimal

import pytest

from carriers.adapters import CarrierError, ErrorKind, ParcelRequest, State, adapter_class, fold
from carriers.adapters.shiprocket import ShiprocketAdapter
from tests.fakes.carrier_shiprocket import STATUSES, FakeShiprocket


@pytest.fixture
def fake():
    with FakeShiprocket() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return ShiprocketAdapter(fake.credentials, base_url=fake.api_url, webhook_secret=fake.webhook_token)


def parcel(reference="LV-1001", **changes) -> ParcelRequest:
    fields = {
        "reference": reference,
        "recipient_name": "Asha Verma",
        "phone": "+919876543210",
        "address": "12 MG Road, Andheri East",
        "city": "400069",
        "cod_amount": Decimal("1249.00"),
        "currency": "INR",
        "description": "2 × Kurta",
        "quantity": 2,
        "weight_kg": Decimal("0.8"),
        "options": {"city_name": "Mumbai", "state": "Maharashtra", "pickup_location": "Warehouse"},
    }
    return ParcelRequest(**{**fields, **changes})


def api_calls(fake, path):
    return [r for r in fake.requests if r.path == f"/v1/external/{path}"]


def test_the_adapter_is_registered_as_shiprocket():
    assert adapter_class("shiprocket") is ShiprocketAdapter


def test_create_sends_the_order_as_json_with_a_bearer_token_then_assigns_an_awb(fake, adapter):
    created = adapter.create_parcel(parcel())

    order = fake.by_reference("LV-1001")
    assert created.tracking_number == order.awb
    assert created.carrier_reference == str(order.shipment_id)
    assert created.fee == Decimal("72.5")
    [create] = api_calls(fake, "orders/create/adhoc")
    assert create.headers["Authorization"].startswith("Bearer ")
    assert create.headers["Content-Type"] == "application/json"
    body = create.json()
    assert body["payment_method"] == "COD"
    assert body["sub_total"] == "1249.00"
    assert body["order_items"][0]["selling_price"] == "624.50"
    assert body["billing_pincode"] == "400069"
    assert body["billing_phone"] == "9876543210"
    assert body["pickup_location"] == "Warehouse"
    [assign] = api_calls(fake, "courier/assign/awb")
    assert assign.json() == {"shipment_id": order.shipment_id}


def test_a_prepaid_parcel_is_sent_as_prepaid(fake, adapter):
    adapter.create_parcel(parcel(cod_amount=Decimal(0), declared_value=Decimal("999")))

    assert fake.by_reference("LV-1001").body["payment_method"] == "Prepaid"


def test_the_token_is_fetched_once_and_reused(fake, adapter):
    adapter.create_parcel(parcel("LV-1"))
    adapter.create_parcel(parcel("LV-2"))

    assert fake.logins == 1
    [login] = api_calls(fake, "auth/login")
    assert login.json() == {"email": fake.email, "password": fake.password}


def test_a_refused_token_is_renewed_once_and_the_call_repeated(fake, adapter):
    adapter.create_parcel(parcel("LV-1"))
    fake.expire_tokens()

    adapter.create_parcel(parcel("LV-2"))

    assert fake.logins == 2
    assert fake.by_reference("LV-2").awb


def test_wrong_credentials_are_a_permanent_error(fake):
    adapter = ShiprocketAdapter({"EMAIL": fake.email, "PASSWORD": "wrong"}, base_url=fake.api_url)

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.PERMANENT
    assert caught.value.code == "auth"
    assert not fake.orders


def test_find_parcel_finds_a_created_parcel_by_our_reference(fake, adapter):
    created = adapter.create_parcel(parcel("LV-77"))
    adapter.create_parcel(parcel("LV-770"))

    found = adapter.find_parcel("LV-77")

    assert found.tracking_number == created.tracking_number
    assert found.carrier_reference == created.carrier_reference


def test_find_parcel_answers_none_for_an_unknown_reference(adapter):
    assert adapter.find_parcel("LV-404") is None


def test_a_failure_between_order_and_awb_is_unknown_and_find_parcel_finishes_the_create(fake, adapter):
    fake.assign_fails_next = True

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel("LV-5"))
    found = adapter.find_parcel("LV-5")

    assert caught.value.kind == ErrorKind.UNKNOWN
    assert len(fake.orders) == 1
    assert found.tracking_number == fake.by_reference("LV-5").awb


def test_cancel_cancels_the_shipment_by_awb(fake, adapter):
    created = adapter.create_parcel(parcel())

    adapter.cancel_parcel(created.tracking_number)

    assert fake.by_awb(created.tracking_number).status == "CANCELED"
    assert api_calls(fake, "orders/cancel/shipment/awbs")[0].json() == {"awbs": [created.tracking_number]}
    assert adapter.find_parcel("LV-1001") is None


def test_cancelling_an_unknown_awb_is_permanent(adapter):
    with pytest.raises(CarrierError) as caught:
        adapter.cancel_parcel("0000")

    assert caught.value.kind == ErrorKind.PERMANENT


def test_the_label_is_a_pdf_fetched_without_our_token(fake, adapter):
    first = adapter.create_parcel(parcel("LV-1"))
    second = adapter.create_parcel(parcel("LV-2"))

    pdf = adapter.label_pdf([first.tracking_number, second.tracking_number])

    assert pdf.startswith(b"%PDF")
    [generate] = api_calls(fake, "courier/generate/label")
    assert generate.json() == {"shipment_id": [int(first.carrier_reference), int(second.carrier_reference)]}
    [download] = [r for r in fake.requests if r.path.startswith("/labels/")]
    assert "Authorization" not in download.headers


def test_a_label_for_a_parcel_created_elsewhere_finds_its_shipment_through_tracking(fake, adapter):
    created = adapter.create_parcel(parcel())
    other = ShiprocketAdapter(fake.credentials, base_url=fake.api_url)

    assert other.label_pdf([created.tracking_number]).startswith(b"%PDF")


def test_track_reads_each_awbs_current_status_and_skips_parcels_without_news(fake, adapter):
    moving = adapter.create_parcel(parcel("LV-1")).tracking_number
    delivered = adapter.create_parcel(parcel("LV-2")).tracking_number
    silent = adapter.create_parcel(parcel("LV-3")).tracking_number
    fake.push_status(moving, 18)
    fake.push_status(delivered, 17)
    fake.push_status(delivered, 7)

    updates = adapter.track([moving, delivered, silent])

    assert [(u.tracking_number, u.raw_code, u.raw_text) for u in updates] == [
        (moving, "18", "In Transit"),
        (delivered, "7", "Delivered"),
    ]
    assert updates[1].occurred_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert updates[1].location == "Mumbai_Andheri_H (Maharashtra)"


def test_a_webhook_with_the_right_token_is_accepted_and_parsed(fake, adapter):
    awb = adapter.create_parcel(parcel()).tracking_number
    headers, body = fake.webhook(awb, 17)

    assert adapter.verify_webhook(headers, body)
    [update] = adapter.parse_webhook(headers, body)
    assert update.tracking_number == awb
    assert update.raw_code == "17"
    assert update.raw_text == "OUT FOR DELIVERY"
    assert update.occurred_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert update.location == "Mumbai_Andheri_H (Maharashtra)"


def test_a_webhook_with_a_wrong_or_missing_token_is_refused(fake, adapter):
    awb = adapter.create_parcel(parcel()).tracking_number
    headers, body = fake.webhook(awb, 7, token="guessed")

    assert not adapter.verify_webhook(headers, body)
    assert not adapter.verify_webhook({"Content-Type": "application/json"}, body)


def test_an_adapter_without_a_webhook_secret_refuses_every_webhook(fake, adapter):
    awb = adapter.create_parcel(parcel()).tracking_number
    headers, body = fake.webhook(awb, 7, token="")
    unconfigured = ShiprocketAdapter(fake.credentials, base_url=fake.api_url)

    assert not unconfigured.verify_webhook(headers, body)


def test_a_validation_error_is_permanent(fake, adapter):
    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel(recipient_name=""))

    assert caught.value.kind == ErrorKind.PERMANENT
    assert caught.value.code == "422"
    assert "billing_customer_name" in caught.value.text


def test_a_malformed_pincode_is_an_invalid_address(adapter):
    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel(city="4000"))

    assert caught.value.kind == ErrorKind.INVALID_ADDRESS


def test_an_unserviceable_pincode_answered_in_http_200_is_an_invalid_address_and_the_order_is_cancelled(
    fake, adapter
):
    fake.unserviceable_pincodes.add("400069")

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.INVALID_ADDRESS
    assert "not serviceable" in caught.value.text
    assert fake.by_reference("LV-1001").status == "CANCELED"


def test_a_rate_limit_is_retryable_after_the_retry_after_header(fake, adapter):
    fake.throttle_next(retry_after=30)

    with pytest.raises(CarrierError) as caught:
        adapter.track(["190900000001"])

    assert caught.value.kind == ErrorKind.RETRYABLE
    assert caught.value.retry_after == 30


def test_a_server_error_is_retryable(fake, adapter):
    fake.fail_next(502)

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.RETRYABLE


def test_a_create_that_times_out_is_unknown_because_the_order_may_exist(fake):
    adapter = ShiprocketAdapter(fake.credentials, base_url=fake.api_url, timeout=0.2)
    fake.delay_next(0.5)

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.UNKNOWN
    assert fake.by_reference("LV-1001") is not None


def test_a_refused_connection_is_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = ShiprocketAdapter(
        {"EMAIL": "a", "PASSWORD": "b"}, base_url=f"http://127.0.0.1:{port}", timeout=0.2
    )

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.RETRYABLE


def test_every_default_status_maps_to_a_state_and_every_status_the_fake_emits_is_mapped():
    table = ShiprocketAdapter.default_status_map

    assert all(isinstance(state, State) for state, _ in table.values())
    assert all(key == fold(key) for key in table)
    assert {fold(str(status)) for status in STATUSES} <= set(table)
    assert table["10"][0] == State.RETURNED
    assert table["9"][0] == State.RETURNING


def test_shiprocket_has_no_city_list(fake, adapter):
    assert adapter.cities() == []
    assert fake.requests == []
