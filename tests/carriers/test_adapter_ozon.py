"""The Ozon Express adapter against its loopback fake (tests/fakes/carrier_ozon.py)."""

import logging
import socket
import traceback
from decimal import Decimal

import pytest

from carriers.adapters import CarrierError, ErrorKind, ParcelRequest, State, adapter_class, fold
from carriers.adapters.ozon import OzonExpressAdapter
from tests.fakes.carrier_ozon import STATUSES, FakeOzon, multipart_fields


@pytest.fixture
def fake():
    with FakeOzon() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return OzonExpressAdapter(fake.credentials, base_url=fake.base_url, timeout=2)


def parcel(reference="LV-1001", city="58", **changes) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Fatima Zahra",
        "phone": "+212612345678",
        "address": "12 Rue Atlas, Agdal",
        "city": city,
        "cod_amount": Decimal("250.00"),
        "currency": "MAD",
        "description": "Robe",
    }
    values.update(changes)
    return ParcelRequest(**values)


def test_the_adapter_is_registered_as_ozon_without_webhooks():
    assert adapter_class("ozon") is OzonExpressAdapter
    assert OzonExpressAdapter.supports_webhooks is False


def test_create_posts_a_multipart_form_to_the_keyed_path(fake, adapter):
    created = adapter.create_parcel(parcel())

    request = fake.requests[-1]
    assert request.path == f"/customers/{fake.customer_id}/{fake.api_key}/add-parcel"
    fields = multipart_fields(request)
    assert fields["parcel-city"] == "58"
    assert fields["parcel-price"] == "250"
    assert fields["parcel-receiver"] == "Fatima Zahra"
    assert fields["parcel-stock"] == "0"
    assert created.tracking_number in fake.parcels
    assert created.fee == Decimal("30")


def test_the_account_options_override_the_parcel_defaults(fake, adapter):
    products = [{"ref": "ROBE-M", "qnty": 2}]

    adapter.create_parcel(parcel(options={"parcel-open": "2", "parcel-stock": "1", "products": products}))

    fields = multipart_fields(fake.requests[-1])
    assert fields["parcel-open"] == "2"
    assert fields["parcel-stock"] == "1"
    assert fields["products"] == '[{"ref": "ROBE-M", "qnty": 2}]'


def test_a_wrong_key_answered_in_http_200_is_a_permanent_error(fake):
    adapter = OzonExpressAdapter(
        {"CUSTOMER_ID": fake.customer_id, "API_KEY": "wrong"}, base_url=fake.base_url
    )

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "check_api"


def test_an_invalid_city_answered_in_http_200_is_an_invalid_address(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="12345"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS
    assert error.value.text == "Ville invalide"


def test_another_refusal_in_http_200_is_permanent(fake, adapter):
    fake.refuse_next("Téléphone invalide")

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT


def test_a_429_is_retryable_after_the_time_asked(fake, adapter):
    fake.throttle_next(retry_after=15)

    with pytest.raises(CarrierError) as error:
        adapter.track(["OZ1"])

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.retry_after == 15


def test_a_server_error_is_retryable(fake, adapter):
    fake.server_error_next(502)

    with pytest.raises(CarrierError) as error:
        adapter.track(["OZ1"])

    assert error.value.kind == ErrorKind.RETRYABLE


def test_a_create_that_times_out_is_unknown_though_the_parcel_exists(fake):
    adapter = OzonExpressAdapter(fake.credentials, base_url=fake.base_url, timeout=0.2)
    fake.hang_next(0.4)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.UNKNOWN
    assert len(fake.parcels) == 1


def test_find_by_our_reference_is_refused_rather_than_answered_not_found(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.find_parcel("LV-1001")

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "find_not_supported"


def test_cancel_deletes_a_new_parcel(fake, adapter):
    number = adapter.create_parcel(parcel()).tracking_number

    adapter.cancel_parcel(number)

    assert fake.parcels[number].status == "Annulé"


def test_cancel_after_pick_up_is_refused_permanently(fake, adapter):
    number = adapter.create_parcel(parcel()).tracking_number
    fake.push_status(number, "Ramassé")

    with pytest.raises(CarrierError) as error:
        adapter.cancel_parcel(number)

    assert error.value.kind == ErrorKind.PERMANENT


def test_labels_come_from_a_saved_delivery_note_as_a_pdf(fake, adapter):
    numbers = [adapter.create_parcel(parcel(reference=f"LV-{n}")).tracking_number for n in range(2)]

    pdf = adapter.label_pdf(numbers)

    assert pdf.startswith(b"%PDF")
    [note] = fake.notes.values()
    assert note == {"codes": numbers, "saved": True}


def test_track_asks_for_the_batch_in_one_json_request(fake, adapter):
    first = adapter.create_parcel(parcel(reference="LV-1")).tracking_number
    second = adapter.create_parcel(parcel(reference="LV-2")).tracking_number
    fake.push_status(first, "En cours de livraison")
    fake.push_status(first, "Livré", comment="Remis au client")
    fake.push_status(second, "Refusé", comment="Client absent")

    updates = adapter.track([first, second, "OZ404"])

    assert fake.requests[-1].json() == {"tracking-number": [first, second, "OZ404"]}
    assert [u.raw_code for u in updates if u.tracking_number == first] == [
        "Nouveau Colis",
        "En cours de livraison",
        "Livré",
    ]
    refusal = [u for u in updates if u.tracking_number == second][-1]
    assert (refusal.raw_code, refusal.raw_text) == ("Refusé", "Client absent")
    assert refusal.occurred_at is not None


def test_track_reads_the_single_parcel_answer_too(fake, adapter):
    number = adapter.create_parcel(parcel()).tracking_number

    [update] = adapter.track([number])

    assert (update.tracking_number, update.raw_code) == (number, "Nouveau Colis")


def test_no_webhook_is_ever_verified(adapter):
    assert not adapter.verify_webhook({"Content-Type": "application/json"}, b'{"STATUT": "Livr\\u00e9"}')


def test_parsing_a_webhook_is_refused(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.parse_webhook({}, b"{}")

    assert error.value.code == "no_webhooks"


def test_cities_are_listed_without_the_key(fake, adapter):
    cities = {city.carrier_city_id: city.name for city in adapter.cities()}

    assert cities == {"37": "Agadir", "41": "Casablanca", "58": "Rabat"}
    assert fake.requests[-1].path == "/cities"


def test_every_raw_status_in_the_default_table_maps_to_a_state():
    for raw, (state, _reason) in OzonExpressAdapter.default_status_map.items():
        assert raw == fold(raw)
        assert isinstance(state, State)


def test_every_status_the_fake_can_emit_is_in_the_default_table():
    assert {fold(status) for status in STATUSES} <= set(OzonExpressAdapter.default_status_map)


def test_the_key_is_in_no_log_line_even_at_debug_level(fake, adapter, caplog):
    caplog.set_level(logging.DEBUG)

    number = adapter.create_parcel(parcel()).tracking_number
    adapter.track([number])

    assert f"/customers/{fake.customer_id}/***/add-parcel" in caplog.text  # urllib3, redacted
    assert fake.api_key not in caplog.text
    for personal in ("Fatima", "612345678", "Rue Atlas"):
        assert personal not in caplog.text


def test_the_key_is_in_no_error_nor_its_traceback():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = "sk_live_SECRET_9f8e7d6c"
    adapter = OzonExpressAdapter({"CUSTOMER_ID": "4242", "API_KEY": key}, base_url=f"http://127.0.0.1:{port}")

    with pytest.raises(CarrierError) as error:
        adapter.track(["OZ1"])

    assert error.value.kind == ErrorKind.RETRYABLE
    assert key not in "".join(traceback.format_exception(error.value))
    assert key not in repr(adapter)
