"""The Ameex adapter against its loopback fake (tests/fakes/carrier_ameex.py)."""

import logging
import socket
import time
from decimal import Decimal

import pytest

from carriers.adapters import CarrierError, ErrorKind, ParcelRequest, State, adapter_class, fold
from carriers.adapters.ameex import AmeexAdapter
from tests.fakes.carrier_ameex import STATUSES, FakeAmeex


@pytest.fixture
def fake():
    with FakeAmeex() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return AmeexAdapter(
        fake.credentials, base_url=fake.base_url, webhook_secret=fake.webhook_secret, timeout=2
    )


def parcel(reference="LV-1001", city="1", **changes) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Fatima Zahra",
        "phone": "+212612345678",
        "address": "12 Rue Atlas, Maarif",
        "city": city,
        "cod_amount": Decimal("249.00"),
        "currency": "MAD",
        "description": "2 × Caftan brodé",
        "quantity": 2,
    }
    values.update(changes)
    return ParcelRequest(**values)


def test_the_adapter_is_registered_as_ameex():
    assert adapter_class("ameex") is AmeexAdapter


def test_create_sends_a_form_with_the_api_headers_and_returns_the_parcel_code(fake, adapter):
    created = adapter.create_parcel(parcel())

    request = fake.requests[-1]
    assert request.method == "POST"
    assert request.path == "/customer/Delivery/Parcels/Action/Type/Add"
    assert request.headers["C-Api-Id"] == fake.api_id
    assert request.headers["C-Api-Key"] == fake.api_key
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = {key: values[-1] for key, values in request.form().items()}
    assert form["order_num"] == "LV-1001"
    assert form["city"] == "1"
    assert form["cod"] == "249.00"
    assert form["receiver"] == "Fatima Zahra"
    assert created.tracking_number in fake.parcels
    assert created.carrier_reference == "LV-1001"


def test_the_account_options_ride_along_as_form_fields(fake, adapter):
    adapter.create_parcel(parcel(options={"business": "7", "comment": "Appeler avant"}))

    form = {key: values[-1] for key, values in fake.requests[-1].form().items()}
    assert form["business"] == "7"
    assert form["comment"] == "Appeler avant"


def test_wrong_credentials_answered_in_http_200_are_a_permanent_error(fake):
    adapter = AmeexAdapter({"API_ID": fake.api_id, "API_KEY": "wrong"}, base_url=fake.base_url)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "login"
    assert fake.parcels == {}


def test_a_refusal_inside_http_200_is_a_permanent_error(fake, adapter):
    fake.refuse_next("Veuillez choisir l'expéditeur")

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT
    assert "expéditeur" in error.value.text


def test_an_unknown_city_is_an_invalid_address(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="999"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS


def test_a_429_is_retryable_after_the_time_ameex_asks(fake, adapter):
    fake.throttle_next(retry_after=42)

    with pytest.raises(CarrierError) as error:
        adapter.track(["AMX000001MA"])

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.retry_after == 42


def test_a_server_error_is_retryable(fake, adapter):
    fake.server_error_next(503)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.RETRYABLE


def test_a_create_that_times_out_is_unknown_and_found_again_by_our_reference(fake):
    adapter = AmeexAdapter(fake.credentials, base_url=fake.base_url, timeout=0.2)
    fake.hang_next(0.4)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(reference="LV-2002"))

    assert error.value.kind == ErrorKind.UNKNOWN
    found = adapter.find_parcel("LV-2002")
    assert found is not None
    assert found.tracking_number == fake.by_order_num("LV-2002").code


def test_a_refused_connection_is_retryable_even_on_a_create():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = AmeexAdapter({"API_ID": "1", "API_KEY": "k"}, base_url=f"http://127.0.0.1:{port}", timeout=0.2)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.RETRYABLE


def test_find_matches_our_reference_exactly(adapter):
    adapter.create_parcel(parcel(reference="LV-10"))
    wanted = adapter.create_parcel(parcel(reference="LV-100"))

    assert adapter.find_parcel("LV-100").tracking_number == wanted.tracking_number
    assert adapter.find_parcel("LV-1") is None


def test_cancel_deletes_a_parcel_not_yet_picked_up(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number

    adapter.cancel_parcel(code)

    assert fake.parcels[code].status == "Annulé"
    assert fake.requests[-1].query == {"ParcelCode": [code]}


def test_cancel_after_pick_up_is_refused_permanently(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number
    fake.push_status(code, "Ramassé")

    with pytest.raises(CarrierError) as error:
        adapter.cancel_parcel(code)

    assert error.value.kind == ErrorKind.PERMANENT


def test_the_label_of_one_parcel_is_a_pdf(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number

    pdf = adapter.label_pdf([code])

    assert pdf.startswith(b"%PDF")
    assert fake.requests[-1].query == {"Ref": [code], "LabelType": ["Label_100_100"]}


def test_the_labels_of_several_parcels_come_from_one_delivery_note(fake, adapter):
    codes = [adapter.create_parcel(parcel(reference=f"LV-{n}")).tracking_number for n in range(3)]

    pdf = adapter.label_pdf(codes)

    assert pdf.startswith(b"%PDF")
    [(ref, parcels)] = fake.notes.items()
    assert parcels == codes
    assert fake.requests[-1].query["Ref"] == [ref]


def test_track_reads_each_parcels_history_in_numeric_order(fake, adapter):
    first = adapter.create_parcel(parcel(reference="LV-1")).tracking_number
    second = adapter.create_parcel(parcel(reference="LV-2")).tracking_number
    for status in (
        "Ramassé",
        "Expédié",
        "Reçu",
        "Mis en distribution",
        "Reporté",
        "Mis en distribution",
        "Pas de réponse",
        "Mis en distribution",
        "Refusé",
        "Retour en cours",
    ):
        fake.push_status(first, status)
    fake.push_status(second, "Livré", comment="Remis au client")

    updates = adapter.track([first, second, "AMX999999MA"])

    first_codes = [u.raw_code for u in updates if u.tracking_number == first]
    assert len(first_codes) == 11  # "10" sorts after "9", not after "1"
    assert first_codes[-1] == "Retour en cours"
    last = [u for u in updates if u.tracking_number == second][-1]
    assert (last.raw_code, last.raw_text) == ("Livré", "Remis au client")
    assert last.occurred_at is not None and last.occurred_at.tzinfo is not None
    assert fake.requests[-1].form() == {"codes": [f"{first},{second},AMX999999MA"]}


def test_track_splits_a_long_list_into_batches_of_25(fake, adapter):
    codes = [adapter.create_parcel(parcel(reference=f"LV-{n}")).tracking_number for n in range(30)]
    calls = len(fake.requests)

    updates = adapter.track(codes)

    assert len(fake.requests) - calls == 2
    assert {u.tracking_number for u in updates} == set(codes)


def test_a_correctly_signed_webhook_is_verified_and_parsed(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number
    fake.push_status(code, "Livré")
    hook = fake.webhook(code, comment="Remis au client")

    assert adapter.verify_webhook(hook.headers, hook.body)
    [update] = adapter.parse_webhook(hook.headers, hook.body)
    assert (update.tracking_number, update.raw_code, update.raw_text) == (code, "Livré", "Remis au client")


def test_a_webhook_with_a_changed_body_is_refused(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number
    hook = fake.webhook(code, "Refusé").tampered(statut_name="Livré")

    assert not adapter.verify_webhook(hook.headers, hook.body)


def test_a_webhook_signed_with_another_secret_is_refused(fake):
    adapter = AmeexAdapter(fake.credentials, base_url=fake.base_url, webhook_secret="another")
    code = adapter.create_parcel(parcel()).tracking_number
    hook = fake.webhook(code)

    assert not adapter.verify_webhook(hook.headers, hook.body)


def test_a_replayed_webhook_older_than_five_minutes_is_refused(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number
    hook = fake.webhook(code, timestamp=int(time.time()) - 600)

    assert not adapter.verify_webhook(hook.headers, hook.body)


def test_no_webhook_is_accepted_without_a_configured_secret(fake):
    adapter = AmeexAdapter(fake.credentials, base_url=fake.base_url)
    code = adapter.create_parcel(parcel()).tracking_number
    hook = fake.webhook(code)

    assert not adapter.verify_webhook(hook.headers, hook.body)


def test_cities_are_listed_with_ameex_ids(adapter):
    cities = {city.carrier_city_id: city.name for city in adapter.cities()}

    assert cities["1"] == "Casablanca"
    assert len(cities) == 4


def test_every_raw_status_in_the_default_table_maps_to_a_state():
    for raw, (state, _reason) in AmeexAdapter.default_status_map.items():
        assert raw == fold(raw)
        assert isinstance(state, State)


def test_every_status_the_fake_can_emit_is_in_the_default_table():
    assert {fold(status) for status in STATUSES} <= set(AmeexAdapter.default_status_map)


def test_neither_the_key_nor_personal_data_is_logged(fake, adapter, caplog):
    caplog.set_level(logging.DEBUG)
    code = adapter.create_parcel(parcel()).tracking_number
    adapter.track([code])

    assert code in caplog.text
    for secret in (fake.api_key, "Fatima", "612345678", "Rue Atlas"):
        assert secret not in caplog.text
