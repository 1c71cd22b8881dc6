"""The Speedaf adapter against its loopback fake (no database, no mocks of our code)."""

import json
import time
from decimal import Decimal

import pytest

from carriers.adapters import (
    CarrierError,
    ErrorKind,
    ParcelRequest,
    Reason,
    State,
    adapter_class,
    fold,
)
from carriers.adapters.speedaf import SpeedafAdapter
from tests.fakes.carrier_speedaf import ACTIONS, PROBLEM_CODES, FakeSpeedaf


@pytest.fixture
def fake():
    with FakeSpeedaf() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return SpeedafAdapter(
        fake.credentials(), base_url=fake.base_url, webhook_secret=fake.secret_key, timeout=2
    )


def parcel(reference="LV-1001", city="C1", **overrides) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Salma Idrissi",
        "phone": "+212612345678",
        "address": "12 rue Ibn Batouta",
        "city": city,
        "cod_amount": Decimal("249.00"),
        "currency": "MAD",
        "description": "2 × Caftan brodé",
        "quantity": 2,
        "pickup_address": {"name": "Dar Atlas", "phone": "+212522000000", "address": "Zone industrielle"},
    }
    return ParcelRequest(**{**values, **overrides})


def created(adapter, reference="LV-1001"):
    return adapter.create_parcel(parcel(reference))


def test_the_adapter_is_registered_as_speedaf():
    assert adapter_class("speedaf") is SpeedafAdapter


def test_a_created_parcel_gets_the_waybill_speedaf_answered(adapter, fake):
    result = created(adapter)

    assert result.tracking_number in fake.parcels
    assert fake.parcels[result.tracking_number].reference == "LV-1001"


def test_a_create_is_a_json_data_envelope_authenticated_by_app_code_and_fresh_timestamp(adapter, fake):
    created(adapter)

    request = fake.requests[-1]
    assert request.path == "/open-api/express/order/v2/createOrder"
    assert request.query["appCode"] == [fake.app_code]
    assert abs(int(request.query["timestamp"][0]) - time.time() * 1000) < 60_000
    order = request.json()["data"]
    assert order["customOrderNo"] == "LV-1001"
    assert order["customerCode"] == fake.customer_code
    assert order["acceptCityCode"] == "C1"
    assert order["codFee"] == 249.0
    assert order["currencyType"] == "MAD"


def test_a_wrong_app_code_is_a_permanent_error_though_http_says_200(fake):
    adapter = SpeedafAdapter({**fake.credentials(), "APP_CODE": "WRONG"}, base_url=fake.base_url)

    with pytest.raises(CarrierError) as error:
        created(adapter)

    assert (error.value.kind, error.value.code) == (ErrorKind.PERMANENT, "70401")
    assert fake.parcels == {}


def test_a_stale_timestamp_answer_is_retryable(adapter, fake):
    fake.fail_next("70502", "timestamp expired")

    with pytest.raises(CarrierError) as error:
        adapter.track(["MA0200000001"])

    assert (error.value.kind, error.value.code) == (ErrorKind.RETRYABLE, "70502")


def test_a_city_speedaf_does_not_serve_is_an_invalid_address(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="ATLANTIS"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS


def test_a_missing_field_is_a_permanent_error(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(recipient_name=""))

    assert error.value.kind == ErrorKind.PERMANENT
    assert "acceptName" in error.value.text


def test_a_duplicate_reference_is_refused_as_permanent(adapter):
    created(adapter)

    with pytest.raises(CarrierError) as error:
        created(adapter)

    assert error.value.kind == ErrorKind.PERMANENT


def test_a_throttled_call_is_retryable_after_the_time_speedaf_gave(adapter, fake):
    fake.throttle_next(retry_after=45)

    with pytest.raises(CarrierError) as error:
        adapter.track(["MA0200000001"])

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.retry_after == 45


def test_a_server_error_is_retryable(adapter, fake):
    fake.server_error_next(503)

    with pytest.raises(CarrierError) as error:
        adapter.cities()

    assert error.value.kind == ErrorKind.RETRYABLE


def test_a_create_that_times_out_is_unknown_and_the_parcel_may_exist(fake):
    adapter = SpeedafAdapter(fake.credentials(), base_url=fake.base_url, timeout=0.2)
    fake.delay_next(0.5)

    with pytest.raises(CarrierError) as error:
        created(adapter)

    assert error.value.kind == ErrorKind.UNKNOWN
    assert fake.by_reference("LV-1001") is not None


def test_a_create_that_cannot_connect_is_retryable(fake):
    adapter = SpeedafAdapter(fake.credentials(), base_url=fake.base_url, timeout=0.2)
    fake.stop()

    with pytest.raises(CarrierError) as error:
        created(adapter)

    assert error.value.kind == ErrorKind.RETRYABLE


def test_finding_a_parcel_by_reference_is_unknown_since_speedaf_has_no_such_lookup(adapter, fake):
    created(adapter)
    calls = len(fake.requests)

    with pytest.raises(CarrierError) as error:
        adapter.find_parcel("LV-1001")

    assert error.value.kind == ErrorKind.UNKNOWN
    assert len(fake.requests) == calls  # nothing re-sent


def test_a_parcel_not_yet_picked_up_is_cancelled(adapter, fake):
    waybill = created(adapter).tracking_number

    adapter.cancel_parcel(waybill)

    assert fake.parcels[waybill].cancelled
    assert fake.requests[-1].json()["data"] == [
        {"customerCode": fake.customer_code, "billCode": waybill, "cancelReason": "cancelled"}
    ]


def test_a_parcel_already_picked_up_cannot_be_cancelled(adapter, fake):
    waybill = created(adapter).tracking_number
    fake.push(waybill, "1")

    with pytest.raises(CarrierError) as error:
        adapter.cancel_parcel(waybill)

    assert error.value.kind == ErrorKind.PERMANENT
    assert not fake.parcels[waybill].cancelled


def test_the_label_of_several_parcels_is_one_pdf(adapter, fake):
    waybills = [created(adapter, f"LV-{n}").tracking_number for n in (1, 2)]

    pdf = adapter.label_pdf(waybills)

    assert pdf.startswith(b"%PDF")
    print_call = next(r for r in fake.requests if r.path.endswith("/print"))
    assert print_call.json()["data"]["waybillNoList"] == waybills


def test_tracking_a_batch_returns_each_parcels_scans_with_carrier_time(adapter, fake):
    first, second = (created(adapter, f"LV-{n}").tracking_number for n in (1, 2))
    fake.push(first, "1", when="2025-03-01 09:30:00")
    fake.push(first, "4", when="2025-03-02 10:00:00")
    fake.push(second, "IP05")

    updates = adapter.track([first, second])

    assert [(u.tracking_number, u.raw_code) for u in updates] == [
        (first, "1"),
        (first, "4"),
        (second, "IP05"),
    ]
    assert updates[1].occurred_at.isoformat() == "2025-03-02T10:00:00+00:00"
    assert updates[1].raw_text == "Out for delivery"
    assert fake.requests[-1].json()["data"] == {"mailNoList": [first, second]}


def test_a_push_with_a_good_signature_is_verified_and_parsed(adapter, fake):
    waybill = created(adapter).tracking_number
    push = fake.webhook(waybill, "5")

    assert adapter.verify_webhook(push.headers, push.body)
    [update] = adapter.parse_webhook(push.headers, push.body)
    assert (update.tracking_number, update.raw_code) == (waybill, "5")
    assert update.event_id == json.loads(push.body)["eventId"]


def test_a_push_with_a_bad_signature_is_refused(adapter, fake):
    waybill = created(adapter).tracking_number
    push = fake.webhook(waybill, "5")

    forged = push.tampered(push.body.replace(b'"5"', b'"730"'))

    assert not adapter.verify_webhook(forged.headers, forged.body)
    assert not adapter.verify_webhook({**push.headers, "X-Speedaf-Signature": "hmac-sha256=00"}, push.body)


def test_a_replayed_old_push_is_refused(adapter, fake):
    waybill = created(adapter).tracking_number
    push = fake.webhook(waybill, "5", timestamp_ms=int(time.time() * 1000) - 10 * 60 * 1000)

    assert not adapter.verify_webhook(push.headers, push.body)


def test_without_a_webhook_secret_no_push_is_trusted(adapter, fake):
    unsigned = SpeedafAdapter(fake.credentials(), base_url=fake.base_url)
    push = fake.webhook(created(adapter).tracking_number, "5")

    assert not unsigned.verify_webhook(push.headers, push.body)


def test_every_default_status_maps_to_a_state_and_folded_keys():
    for raw, (state, reason) in SpeedafAdapter.default_status_map.items():
        assert raw == fold(raw)
        assert isinstance(state, State)
        assert isinstance(reason, Reason)


def test_every_code_the_fake_can_report_is_in_the_default_map():
    for code in [*ACTIONS, *PROBLEM_CODES]:
        assert fold(code) in SpeedafAdapter.default_status_map, code


def test_the_documented_codes_map_as_the_reference_says():
    table = SpeedafAdapter.default_status_map
    assert table["1"][0] == State.PICKED_UP
    assert table["4"][0] == State.OUT_FOR_DELIVERY
    assert table["5"][0] == State.DELIVERED
    assert table["ip05"] == (State.DELIVERY_FAILED, Reason.REFUSED)


def test_cities_are_listed_with_their_province_as_zone(adapter):
    cities = adapter.cities()

    by_id = {city.carrier_city_id: city for city in cities}
    assert by_id["C1"].name == "Casablanca"
    assert by_id["C1"].zone == "Casablanca - Settat"
    assert len(cities) == 4
