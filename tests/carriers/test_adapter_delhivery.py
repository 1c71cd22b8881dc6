"""The Delhivery adapter against its loopback fake (tests/fakes/carrier_delhivery.py)."""

import json
import socket
from datetime import timedelta
from decimal import Decimal

import pytest

from carriers.adapters import CarrierError, City, ErrorKind, ParcelRequest, State, adapter_class, fold
from carriers.adapters.delhivery import DelhiveryAdapter, raw_code
from tests.fakes.carrier_delhivery import STATUSES, FakeDelhivery


@pytest.fixture
def fake():
    with FakeDelhivery() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return DelhiveryAdapter(fake.credentials, base_url=fake.base_url, webhook_secret=fake.webhook_token)


def parcel(reference="LV-2001", **changes) -> ParcelRequest:
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
        "options": {"city_name": "Mumbai", "state": "Maharashtra", "pickup_location": "LIVRA-WH1"},
    }
    return ParcelRequest(**{**fields, **changes})


def calls(fake, path):
    return [r for r in fake.requests if r.path == path]


def test_the_adapter_is_registered_as_delhivery():
    assert adapter_class("delhivery") is DelhiveryAdapter


def test_create_posts_format_json_and_data_form_encoded_with_the_token_header(fake, adapter):
    created = adapter.create_parcel(parcel())

    assert created.tracking_number in fake.packages
    [create] = calls(fake, "/api/cmu/create.json")
    assert create.headers["Authorization"] == f"Token {fake.token}"
    assert create.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = create.form()
    assert form["format"] == ["json"]
    data = json.loads(form["data"][0])
    assert data["pickup_location"] == {"name": "LIVRA-WH1"}
    [shipment] = data["shipments"]
    assert shipment["order"] == "LV-2001"
    assert shipment["payment_mode"] == "COD"
    assert shipment["cod_amount"] == "1249.00"
    assert shipment["pin"] == "400069"
    assert shipment["city"] == "Mumbai"
    assert shipment["phone"] == "9876543210"
    assert shipment["weight"] == "800"


def test_a_prepaid_parcel_is_sent_as_prepaid_with_no_cash_to_collect(fake, adapter):
    created = adapter.create_parcel(parcel(cod_amount=Decimal(0), declared_value=Decimal("999")))

    shipment = fake.packages[created.tracking_number].shipment
    assert (shipment["payment_mode"], shipment["cod_amount"], shipment["total_amount"]) == (
        "Prepaid",
        "0",
        "999",
    )


def test_a_wrong_token_is_a_permanent_error(fake):
    adapter = DelhiveryAdapter({"API_TOKEN": "wrong"}, base_url=fake.base_url)

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.PERMANENT
    assert caught.value.code == "auth"


def test_find_parcel_finds_a_created_parcel_by_our_reference(fake, adapter):
    created = adapter.create_parcel(parcel("LV-77"))
    adapter.create_parcel(parcel("LV-770"))

    found = adapter.find_parcel("LV-77")

    assert found.tracking_number == created.tracking_number
    assert calls(fake, "/api/v1/packages/json/")[-1].query == {"ref_ids": ["LV-77"]}


def test_find_parcel_answers_none_for_an_unknown_reference(adapter):
    assert adapter.find_parcel("LV-404") is None


def test_cancel_cancels_the_waybill_and_find_parcel_no_longer_returns_it(fake, adapter):
    created = adapter.create_parcel(parcel())

    adapter.cancel_parcel(created.tracking_number)

    assert calls(fake, "/api/p/edit")[0].json() == {
        "waybill": created.tracking_number,
        "cancellation": "true",
    }
    assert fake.packages[created.tracking_number].scans[-1]["ScanType"] == "CN"
    assert adapter.find_parcel("LV-2001") is None


def test_a_refused_cancellation_answered_in_http_200_is_permanent(fake, adapter):
    created = adapter.create_parcel(parcel())
    fake.push_status(created.tracking_number, "UD", "In Transit")

    with pytest.raises(CarrierError) as caught:
        adapter.cancel_parcel(created.tracking_number)

    assert caught.value.kind == ErrorKind.PERMANENT
    assert "cannot be cancelled" in caught.value.text


def test_the_label_is_a_pdf_fetched_from_its_link_without_our_token(fake, adapter):
    created = adapter.create_parcel(parcel())

    pdf = adapter.label_pdf([created.tracking_number])

    assert pdf.startswith(b"%PDF")
    [slip] = calls(fake, "/api/p/packing_slip")
    assert slip.query == {"wbns": [created.tracking_number], "pdf": ["true"]}
    [download] = [r for r in fake.requests if r.path.startswith("/labels/")]
    assert "Authorization" not in download.headers


def test_several_labels_are_merged_into_one_pdf(fake, adapter):
    first = adapter.create_parcel(parcel("LV-1")).tracking_number
    second = adapter.create_parcel(parcel("LV-2")).tracking_number

    assert adapter.label_pdf([first, second]).startswith(b"%PDF")


def test_a_label_for_an_unknown_waybill_is_permanent(adapter):
    with pytest.raises(CarrierError) as caught:
        adapter.label_pdf(["0000"])

    assert caught.value.kind == ErrorKind.PERMANENT


def test_track_reads_a_batch_in_one_call_with_every_scan_as_status_type_and_status(fake, adapter):
    delivered = adapter.create_parcel(parcel("LV-1")).tracking_number
    returned = adapter.create_parcel(parcel("LV-2")).tracking_number
    fake.push_status(delivered, "UD", "Dispatched", "Out for delivery")
    fake.push_status(delivered, "DL", "Delivered", "Delivered to consignee")
    fake.push_status(returned, "RT", "In Transit", "Returned as per client instructions")
    fake.push_status(returned, "DL", "RTO", "RTO delivered")

    updates = adapter.track([delivered, returned, "0000"])

    [batch] = calls(fake, "/api/v1/packages/json/")
    assert batch.query == {"waybill": [f"{delivered},{returned},0000"]}
    assert [(u.tracking_number, u.raw_code) for u in updates] == [
        (delivered, "UD/Manifested"),
        (delivered, "UD/Dispatched"),
        (delivered, "DL/Delivered"),
        (returned, "UD/Manifested"),
        (returned, "RT/In Transit"),
        (returned, "DL/RTO"),
    ]
    table = DelhiveryAdapter.default_status_map
    assert table[fold(updates[2].raw_code)][0] == State.DELIVERED
    assert table[fold(updates[5].raw_code)][0] == State.RETURNED
    assert updates[2].occurred_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert updates[2].raw_text == "Delivered to consignee"


def test_track_splits_more_than_fifty_waybills_into_several_calls(fake, adapter):
    numbers = [f"{n:013d}" for n in range(120)]

    assert adapter.track(numbers) == []
    assert len(calls(fake, "/api/v1/packages/json/")) == 3


def test_a_push_with_the_shared_token_is_accepted_and_parsed(fake, adapter):
    waybill = adapter.create_parcel(parcel()).tracking_number
    fake.push_status(waybill, "UD", "Pending", "Consignee refused to accept", "EOD-6")
    headers, body = fake.webhook(waybill)

    assert adapter.verify_webhook(headers, body)
    [update] = adapter.parse_webhook(headers, body)
    assert update.tracking_number == waybill
    assert update.raw_code == "UD/Pending"
    assert update.raw_text == "Consignee refused to accept"
    assert update.raw["nsl_code"] == "EOD-6"
    assert update.location == "Mumbai_Andheri_D (Maharashtra)"


def test_a_push_with_a_wrong_or_missing_token_is_refused(fake, adapter):
    waybill = adapter.create_parcel(parcel()).tracking_number
    headers, body = fake.webhook(waybill, token="guessed")

    assert not adapter.verify_webhook(headers, body)
    assert not adapter.verify_webhook({"Content-Type": "application/json"}, body)
    assert not DelhiveryAdapter(fake.credentials).verify_webhook(headers, body)


def test_an_unserviceable_pincode_answered_in_http_200_is_an_invalid_address(fake, adapter):
    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel(city="999999"))

    assert caught.value.kind == ErrorKind.INVALID_ADDRESS
    assert not fake.packages


def test_a_duplicate_order_answered_in_http_200_is_permanent(adapter):
    adapter.create_parcel(parcel())

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.PERMANENT
    assert caught.value.code == "duplicate"


def test_an_unknown_pickup_location_answered_in_http_200_is_permanent(adapter):
    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel(options={"city_name": "Mumbai", "state": "Maharashtra"}))

    assert caught.value.kind == ErrorKind.PERMANENT
    assert "ClientWarehouse" in caught.value.text


def test_a_rate_limit_is_retryable_after_the_retry_after_header(fake, adapter):
    fake.throttle_next(retry_after=60)

    with pytest.raises(CarrierError) as caught:
        adapter.track(["1490000000001"])

    assert caught.value.kind == ErrorKind.RETRYABLE
    assert caught.value.retry_after == 60


def test_a_server_error_is_retryable(fake, adapter):
    fake.fail_next(503)

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.RETRYABLE


def test_a_create_that_times_out_is_unknown_because_the_parcel_may_exist(fake):
    adapter = DelhiveryAdapter(fake.credentials, base_url=fake.base_url, timeout=0.2)
    fake.delay_next(0.5)

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.UNKNOWN
    assert fake.by_reference("LV-2001") is not None


def test_a_tracking_call_that_times_out_is_retryable(fake):
    adapter = DelhiveryAdapter(fake.credentials, base_url=fake.base_url, timeout=0.2)
    fake.delay_next(0.5)

    with pytest.raises(CarrierError) as caught:
        adapter.track(["1490000000001"])

    assert caught.value.kind == ErrorKind.RETRYABLE


def test_a_refused_connection_is_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = DelhiveryAdapter({"API_TOKEN": "x"}, base_url=f"http://127.0.0.1:{port}", timeout=0.2)

    with pytest.raises(CarrierError) as caught:
        adapter.create_parcel(parcel())

    assert caught.value.kind == ErrorKind.RETRYABLE


def test_every_default_status_maps_to_a_state_and_every_status_the_fake_emits_is_mapped():
    table = DelhiveryAdapter.default_status_map

    assert all(isinstance(state, State) for state, _ in table.values())
    assert all(key == fold(key) for key in table)
    assert {fold(raw_code(status_type, status)) for status_type, status in STATUSES} <= set(table)


def test_delivered_and_returned_share_dl_and_are_told_apart_by_status():
    table = DelhiveryAdapter.default_status_map

    assert table[fold(raw_code("DL", "Delivered"))][0] == State.DELIVERED
    assert table[fold(raw_code("DL", "RTO"))][0] == State.RETURNED
    assert table[fold(raw_code("RT", "In Transit"))][0] == State.RETURNING
    assert table[fold(raw_code("UD", "In Transit"))][0] == State.IN_TRANSIT


def test_cities_are_the_serviceable_pin_codes(fake, adapter):
    cities = adapter.cities()

    assert City("400069", "Mumbai", "MH") in cities
    assert len(cities) == len(fake.pin_codes)
    assert calls(fake, "/c/api/pin-codes/json/")[0].headers["Authorization"] == f"Token {fake.token}"
