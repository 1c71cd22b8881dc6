"""The Coliix adapter against its loopback fake (tests/fakes/carrier_coliix.py)."""

import logging
import socket
from decimal import Decimal

import pytest

from carriers.adapters import CarrierError, ErrorKind, ParcelRequest, State, adapter_class, fold
from carriers.adapters.coliix import ColiixAdapter
from tests.fakes.carrier_coliix import STATUSES, FakeColiix


@pytest.fixture
def fake():
    with FakeColiix() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return ColiixAdapter(
        fake.credentials, base_url=fake.endpoint, webhook_secret=fake.webhook_secret, timeout=2
    )


def parcel(reference="LV-1001", city="Casablanca", **changes) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Fatima Zahra",
        "phone": "+212612345678",
        "address": "12 Rue Atlas, Maarif",
        "city": city,
        "cod_amount": Decimal("249.00"),
        "currency": "MAD",
        "description": "Caftan brodé",
        "quantity": 2,
    }
    values.update(changes)
    return ParcelRequest(**values)


def test_the_adapter_is_registered_as_coliix():
    assert adapter_class("coliix") is ColiixAdapter


def test_an_origin_as_base_url_gets_the_casa_endpoint_path(fake):
    assert ColiixAdapter({"TOKEN": "t"}, base_url=fake.base_url).endpoint == fake.endpoint
    assert ColiixAdapter({"TOKEN": "t"}).endpoint == "https://my.coliix.com/casa/seller/api-parcels"


def test_create_posts_the_token_and_the_parcel_as_a_form(fake, adapter):
    created = adapter.create_parcel(parcel())

    request = fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/casa/seller/api-parcels")
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "Authorization" not in request.headers
    form = {key: values[-1] for key, values in request.form().items()}
    assert form["action"] == "add"
    assert form["token"] == fake.token
    assert form["ville"] == "Casablanca"
    assert form["price"] == "249.00"
    assert form["marchandise_qty"] == "2"
    assert created.tracking_number in fake.parcels


def test_a_bad_token_answered_in_http_200_is_a_permanent_error(fake):
    adapter = ColiixAdapter({"TOKEN": "wrong"}, base_url=fake.endpoint)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "401"
    assert fake.parcels == {}


def test_a_disabled_account_answered_in_http_200_is_a_permanent_error(fake, adapter):
    fake.refuse_next(204, "Le compte est désactivé")

    with pytest.raises(CarrierError) as error:
        adapter.track(["CLX1"])

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.text == "Le compte est désactivé"


def test_an_unknown_city_is_an_invalid_address(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="Atlantis"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS


def test_a_429_is_retryable_after_the_time_asked(fake, adapter):
    fake.throttle_next(retry_after=20)

    with pytest.raises(CarrierError) as error:
        adapter.track(["CLX1"])

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.retry_after == 20


def test_a_server_error_is_retryable(fake, adapter):
    fake.server_error_next(500)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.RETRYABLE


def test_a_create_that_times_out_is_unknown_though_the_parcel_exists(fake):
    adapter = ColiixAdapter(fake.credentials, base_url=fake.endpoint, timeout=0.2)
    fake.hang_next(0.4)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.UNKNOWN
    assert len(fake.parcels) == 1


def test_a_refused_connection_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = ColiixAdapter({"TOKEN": "t"}, base_url=f"http://127.0.0.1:{port}", timeout=0.2)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.RETRYABLE


@pytest.mark.parametrize(
    "call",
    [
        lambda adapter: adapter.find_parcel("LV-1001"),
        lambda adapter: adapter.cancel_parcel("CLX1"),
        lambda adapter: adapter.label_pdf(["CLX1"]),
        lambda adapter: adapter.cities(),
    ],
    ids=["find", "cancel", "label", "cities"],
)
def test_what_coliix_has_no_known_api_for_is_refused_without_a_call(fake, adapter, call):
    with pytest.raises(CarrierError) as error:
        call(adapter)

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code.endswith("_not_supported")
    assert fake.requests == []


def test_track_reads_each_parcels_history_one_call_each(fake, adapter):
    first = adapter.create_parcel(parcel(reference="LV-1")).tracking_number
    second = adapter.create_parcel(parcel(reference="LV-2")).tracking_number
    fake.push_status(first, "Ramassé")
    fake.push_status(first, "Livré")
    fake.push_status(second, "Refusé", note="Client ne répond pas")
    calls = len(fake.requests)

    updates = adapter.track([first, second, "CLX404"])

    assert len(fake.requests) - calls == 3
    assert [u.raw_code for u in updates if u.tracking_number == first] == [
        "Attente De Ramassage",
        "Ramassé",
        "Livré",
    ]
    refusal = [u for u in updates if u.tracking_number == second][-1]
    assert (refusal.raw_code, refusal.raw_text) == ("Refusé", "Client ne répond pas")
    assert refusal.occurred_at is not None and refusal.occurred_at.tzinfo is not None


def test_a_get_webhook_with_the_secret_token_is_verified_and_parsed(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number
    fake.push_status(code, "Livré")
    hook = fake.webhook(code, note="Remis au client")

    assert adapter.verify_webhook(hook.headers, hook.body)
    [update] = adapter.parse_webhook(hook.headers, hook.body)
    assert (update.tracking_number, update.raw_code, update.raw_text) == (code, "Livré", "Remis au client")
    assert "token" not in update.raw


def test_a_post_webhook_reads_its_fields_from_the_form_body(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number
    hook = fake.webhook(code, "Refusé", method="POST")

    assert adapter.verify_webhook(hook.headers, hook.body)
    [update] = adapter.parse_webhook(hook.headers, hook.body)
    assert (update.tracking_number, update.raw_code) == (code, "Refusé")


def test_a_json_webhook_body_is_read_too(adapter):
    headers = {"QUERY_STRING": "token=x"}

    [update] = adapter.parse_webhook(headers, b'{"tracking": "CLX9", "status": "Livr\\u00e9"}')

    assert (update.tracking_number, update.raw_code) == ("CLX9", "Livré")


def test_a_webhook_with_a_wrong_token_is_refused(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number

    assert not adapter.verify_webhook(*_call(fake.webhook(code).with_token("guessed")))


def test_a_webhook_without_a_token_is_refused(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number

    assert not adapter.verify_webhook(*_call(fake.webhook(code).without_token()))


def test_no_webhook_is_accepted_without_a_configured_secret(fake):
    adapter = ColiixAdapter(fake.credentials, base_url=fake.endpoint)
    code = adapter.create_parcel(parcel()).tracking_number

    assert not adapter.verify_webhook(*_call(fake.webhook(code)))


def test_a_webhook_without_tracking_or_state_is_refused(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.parse_webhook({"QUERY_STRING": "token=x&state=Livr%C3%A9"}, b"")

    assert error.value.code == "bad_webhook"


def test_every_raw_status_in_the_default_table_maps_to_a_state():
    for raw, (state, _reason) in ColiixAdapter.default_status_map.items():
        assert raw == fold(raw)
        assert isinstance(state, State)


def test_every_status_the_fake_can_emit_is_in_the_default_table():
    assert {fold(status) for status in STATUSES} <= set(ColiixAdapter.default_status_map)


def test_neither_the_token_nor_personal_data_is_logged(fake, adapter, caplog):
    caplog.set_level(logging.DEBUG)
    code = adapter.create_parcel(parcel()).tracking_number
    adapter.track([code])

    assert code in caplog.text
    for secret in (fake.token, "Fatima", "612345678", "Rue Atlas"):
        assert secret not in caplog.text


def _call(hook):
    return hook.headers, hook.body
