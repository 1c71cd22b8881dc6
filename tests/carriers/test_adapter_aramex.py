"""The Aramex adapter against its loopback fake (no database, no mocks of our code)."""

from datetime import UTC, datetime
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
from carriers.adapters.aramex import AramexAdapter, parse_date
from tests.fakes.carrier_aramex import UPDATE_CODES, FakeAramex


@pytest.fixture
def fake():
    with FakeAramex() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return AramexAdapter(
        fake.credentials(), base_url=fake.base_url, webhook_secret=fake.webhook_token, timeout=2
    )


def parcel(reference="LV-2001", city="Casablanca", **overrides) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Youssef Alaoui",
        "phone": "+212661234567",
        "address": "5 boulevard Zerktouni",
        "city": city,
        "cod_amount": Decimal("249.00"),
        "currency": "MAD",
        "description": "Caftan brodé",
        "weight_kg": Decimal("0.8"),
        "pickup_address": {
            "name": "Dar Atlas",
            "phone": "+212522000000",
            "address": "Sidi Maarouf",
            "city": "Casablanca",
        },
    }
    return ParcelRequest(**{**values, **overrides})


def created(adapter, reference="LV-2001"):
    return adapter.create_parcel(parcel(reference))


def test_the_adapter_is_registered_as_aramex():
    assert adapter_class("aramex") is AramexAdapter


def test_a_created_parcel_gets_the_waybill_aramex_answered(adapter, fake):
    result = created(adapter)

    assert result.tracking_number in fake.shipments
    assert fake.shipments[result.tracking_number].reference == "LV-2001"
    assert result.label_url.endswith(f"/labels/{result.tracking_number}.pdf")


def test_a_create_carries_client_info_label_info_and_the_cod_amount(adapter, fake):
    created(adapter)

    request = fake.requests[-1]
    assert request.path == "/ShippingAPI.V2/Shipping/Service_1_0.svc/json/CreateShipments"
    body = request.json()
    assert body["ClientInfo"]["AccountNumber"] == fake.account_number
    assert body["ClientInfo"]["AccountPin"] == fake.account_pin
    assert body["LabelInfo"] == {"ReportID": 9201, "ReportType": "URL"}
    [shipment] = body["Shipments"]
    assert shipment["Reference1"] == "LV-2001"
    assert shipment["Consignee"]["PartyAddress"]["City"] == "Casablanca"
    assert shipment["Details"]["Services"] == "CODS"
    assert shipment["Details"]["CashOnDeliveryAmount"] == {"CurrencyCode": "MAD", "Value": 249.0}
    assert shipment["ShippingDateTime"].startswith("/Date(")


def test_wrong_credentials_are_a_permanent_error_though_http_says_200(fake):
    adapter = AramexAdapter({**fake.credentials(), "PASSWORD": "wrong"}, base_url=fake.base_url)

    with pytest.raises(CarrierError) as error:
        created(adapter)

    assert (error.value.kind, error.value.code) == (ErrorKind.PERMANENT, "ERR01")
    assert fake.shipments == {}


def test_the_password_never_shows_in_the_adapters_repr(fake):
    adapter = AramexAdapter(fake.credentials(), base_url=fake.base_url)

    assert fake.password not in repr(adapter)


def test_a_city_aramex_does_not_know_is_an_invalid_address(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="Atlantis"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS
    assert error.value.code == "ERR06"


def test_a_missing_phone_is_a_permanent_error(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(phone=""))

    assert (error.value.kind, error.value.code) == (ErrorKind.PERMANENT, "ERR12")


def test_any_has_errors_answer_is_read_as_an_error(adapter, fake):
    fake.fail_next("ERR99", "Internal error")

    with pytest.raises(CarrierError) as error:
        adapter.track(["46000000001"])

    assert (error.value.kind, error.value.code) == (ErrorKind.PERMANENT, "ERR99")


def test_a_throttled_call_is_retryable_after_the_time_aramex_gave(adapter, fake):
    fake.throttle_next(retry_after=20)

    with pytest.raises(CarrierError) as error:
        adapter.track(["46000000001"])

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.retry_after == 20


def test_a_server_error_is_retryable(adapter, fake):
    fake.server_error_next(500)

    with pytest.raises(CarrierError) as error:
        adapter.cities()

    assert error.value.kind == ErrorKind.RETRYABLE


def test_a_create_that_times_out_is_unknown_and_the_shipment_may_exist(fake):
    adapter = AramexAdapter(fake.credentials(), base_url=fake.base_url, timeout=0.2)
    fake.delay_next(0.5)

    with pytest.raises(CarrierError) as error:
        created(adapter)

    assert error.value.kind == ErrorKind.UNKNOWN
    assert fake.by_reference("LV-2001") is not None


def test_a_create_that_cannot_connect_is_retryable(fake):
    adapter = AramexAdapter(fake.credentials(), base_url=fake.base_url, timeout=0.2)
    fake.stop()

    with pytest.raises(CarrierError) as error:
        created(adapter)

    assert error.value.kind == ErrorKind.RETRYABLE


def test_finding_a_shipment_by_reference_is_unknown_since_aramex_has_no_such_lookup(adapter, fake):
    created(adapter)
    calls = len(fake.requests)

    with pytest.raises(CarrierError) as error:
        adapter.find_parcel("LV-2001")

    assert error.value.kind == ErrorKind.UNKNOWN
    assert len(fake.requests) == calls


def test_cancelling_is_refused_as_permanent_since_aramex_has_no_cancel(adapter, fake):
    waybill = created(adapter).tracking_number
    calls = len(fake.requests)

    with pytest.raises(CarrierError) as error:
        adapter.cancel_parcel(waybill)

    assert error.value.kind == ErrorKind.PERMANENT
    assert len(fake.requests) == calls


def test_the_label_is_a_pdf_fetched_through_print_label(adapter, fake):
    waybill = created(adapter).tracking_number

    pdf = adapter.label_pdf([waybill])

    assert pdf.startswith(b"%PDF")
    print_call = next(r for r in fake.requests if r.path.endswith("/json/PrintLabel"))
    assert print_call.json()["ShipmentNumber"] == waybill
    assert print_call.json()["ClientInfo"]["UserName"] == fake.username


def test_the_label_of_an_unknown_shipment_is_a_permanent_error(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.label_pdf(["46999999999"])

    assert error.value.kind == ErrorKind.PERMANENT


def test_tracking_a_batch_returns_each_shipments_updates(adapter, fake):
    first, second = (created(adapter, f"LV-{n}").tracking_number for n in (1, 2))
    fake.push(first, "SH014")
    fake.push(first, "SH005", comments="Signed by Youssef")
    fake.push(second, "REFUSED")

    updates = adapter.track([first, second, "46999999999"])

    assert sorted((u.tracking_number, u.raw_code) for u in updates) == sorted(
        [(first, "SH014"), (first, "SH005"), (second, "REFUSED")]
    )
    delivered = next(u for u in updates if u.raw_code == "SH005")
    assert delivered.raw_text == "Delivered — Signed by Youssef"
    assert delivered.location == "Casablanca"
    assert delivered.occurred_at.tzinfo is not None
    assert fake.requests[-1].json()["Shipments"] == [first, second, "46999999999"]


def test_wcf_dates_are_read_in_utc_and_keep_their_offset():
    moment = parse_date("/Date(1700000000000+0300)/")

    assert moment == datetime.fromtimestamp(1_700_000_000, UTC)
    assert moment.utcoffset().total_seconds() == 3 * 3600


def test_a_push_with_the_shared_secret_is_verified_and_parsed(adapter, fake):
    waybill = created(adapter).tracking_number
    push = fake.webhook(waybill, "SH005")

    assert adapter.verify_webhook(push.headers, push.body)
    [update] = adapter.parse_webhook(push.headers, push.body)
    assert (update.tracking_number, update.raw_code) == (waybill, "SH005")


def test_a_push_with_a_wrong_secret_is_refused(adapter, fake):
    waybill = created(adapter).tracking_number
    push = fake.webhook(waybill, "SH005", token="guessed")

    assert not adapter.verify_webhook(push.headers, push.body)
    assert not adapter.verify_webhook({}, push.body)


def test_without_a_webhook_secret_no_push_is_trusted(adapter, fake):
    unsigned = AramexAdapter(fake.credentials(), base_url=fake.base_url)
    push = fake.webhook(created(adapter).tracking_number, "SH005", token="")

    assert not unsigned.verify_webhook(push.headers, push.body)


def test_every_default_status_maps_to_a_state_and_folded_keys():
    for raw, (state, reason) in AramexAdapter.default_status_map.items():
        assert raw == fold(raw)
        assert isinstance(state, State)
        assert isinstance(reason, Reason)


def test_every_code_the_fake_can_report_is_in_the_default_map():
    for code in UPDATE_CODES:
        assert fold(code) in AramexAdapter.default_status_map, code


def test_sh005_is_delivered_as_the_reference_says():
    assert AramexAdapter.default_status_map["sh005"] == (State.DELIVERED, Reason.NONE)
    assert AramexAdapter.default_status_map["refused"] == (State.DELIVERY_FAILED, Reason.REFUSED)


def test_cities_are_the_account_countrys(adapter, fake):
    cities = adapter.cities()

    assert [c.name for c in cities] == ["Casablanca", "Rabat", "Marrakech", "Tanger", "Fès"]
    assert cities[0].carrier_city_id == "Casablanca"
    assert fake.requests[-1].json()["CountryCode"] == "MA"
