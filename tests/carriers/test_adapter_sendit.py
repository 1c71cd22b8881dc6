"""Sendit's adapter against a loopback Sendit (tests/fakes/carrier_sendit.py): wire format, errors,
tracking and webhooks. No database: adapters are plain classes."""

import json
import socket
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
from carriers.adapters.sendit import SenditAdapter
from tests.fakes.carrier_sendit import STATUSES, FakeSendit


@pytest.fixture
def fake():
    with FakeSendit() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return SenditAdapter(
        fake.credentials, base_url=fake.api_url, webhook_secret=fake.webhook_secret, timeout=2
    )


def parcel(reference="LIV-1001", city="1", **overrides) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Salma Bennani",
        "phone": "+212612345678",
        "address": "12 rue Ibn Battouta",
        "city": city,
        "cod_amount": Decimal("349.00"),
        "currency": "MAD",
        "description": "2 × Caftan brodé",
    }
    values.update(overrides)
    return ParcelRequest(**values)


def test_the_adapter_is_registered_under_its_name():
    assert adapter_class("sendit") is SenditAdapter
    assert SenditAdapter.credential_names == ("PUBLIC_KEY", "SECRET_KEY")


def test_create_logs_in_then_posts_the_parcel_as_json_with_the_bearer_token(fake, adapter):
    created = adapter.create_parcel(parcel())

    login = fake.calls("POST", "/login")[0]
    assert login.json() == {"public_key": fake.public_key, "secret_key": fake.secret_key}
    create = fake.calls("POST", "/deliveries")[0]
    assert create.headers["Authorization"] == f"Bearer {next(iter(fake.tokens))}"
    assert create.headers["Content-Type"] == "application/json"
    sent = create.json()
    assert sent["district_id"] == 1
    assert sent["reference"] == "LIV-1001"
    assert sent["amount"] == 349
    assert sent["phone"] == "0612345678"
    assert sent["name"] == "Salma Bennani"
    assert sent["comment"] == "2 × Caftan brodé"
    assert created.tracking_number in fake.deliveries
    assert created.fee == Decimal(35)
    assert created.label_url.startswith(fake.base_url)


def test_the_token_is_reused_across_calls(fake, adapter):
    adapter.create_parcel(parcel("LIV-1"))
    adapter.create_parcel(parcel("LIV-2"))

    assert len(fake.calls("POST", "/login")) == 1


def test_an_expired_token_is_renewed_once_and_the_call_goes_through(fake, adapter):
    adapter.create_parcel(parcel("LIV-1"))
    fake.expire_tokens()

    created = adapter.create_parcel(parcel("LIV-2"))

    assert len(fake.calls("POST", "/login")) == 2
    assert created.tracking_number in fake.deliveries


def test_wrong_keys_are_a_permanent_error(fake):
    adapter = SenditAdapter({"PUBLIC_KEY": "nope", "SECRET_KEY": "nope"}, base_url=fake.api_url)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "401"
    assert fake.deliveries == {}


def test_find_parcel_returns_the_parcel_created_with_our_reference(fake, adapter):
    adapter.create_parcel(parcel("LIV-7"))
    created = adapter.create_parcel(parcel("LIV-8"))

    found = adapter.find_parcel("LIV-8")

    assert found.tracking_number == created.tracking_number
    assert fake.calls("GET", "/deliveries")[0].query["querystring"] == ["LIV-8"]


def test_find_parcel_ignores_partial_matches_and_returns_none(fake, adapter):
    adapter.create_parcel(parcel("LIV-80"))

    assert adapter.find_parcel("LIV-8") is None


def test_cancel_deletes_the_parcel(fake, adapter):
    created = adapter.create_parcel(parcel())

    adapter.cancel_parcel(created.tracking_number)

    assert created.tracking_number not in fake.deliveries


def test_cancel_after_pickup_is_refused_permanently(fake, adapter):
    created = adapter.create_parcel(parcel())
    fake.push_status(created.tracking_number, "PICKEDUP")

    with pytest.raises(CarrierError) as error:
        adapter.cancel_parcel(created.tracking_number)

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "403"


def test_label_is_a_pdf_for_all_the_codes_asked(fake, adapter):
    codes = [adapter.create_parcel(parcel(f"LIV-{n}")).tracking_number for n in (1, 2)]

    pdf = adapter.label_pdf(codes)

    assert pdf.startswith(b"%PDF")
    assert fake.calls("POST", "/deliveries/getlabels")[0].json() == {
        "codesToPrint": ",".join(codes),
        "printFormat": 1,
    }
    file_request = next(r for r in fake.requests if r.path.startswith("/pdf/"))
    assert "Authorization" not in file_request.headers


def test_track_reads_each_parcel_with_its_status_history(fake, adapter):
    first = adapter.create_parcel(parcel("LIV-1")).tracking_number
    second = adapter.create_parcel(parcel("LIV-2")).tracking_number
    fake.push_status(first, "PICKEDUP", at="2030-09-02 10:00:00")
    fake.push_status(first, "DELIVERING", at="2030-09-03 09:30:00")
    fake.push_status(second, "REJECTED", comment="Client refuse le colis", at="2030-09-03 11:00:00")

    updates = adapter.track([first, second])

    by_parcel = {}
    for update in updates:
        by_parcel.setdefault(update.tracking_number, []).append(update.raw_code)
    assert by_parcel[first] == ["PENDING", "PICKEDUP", "DELIVERING"]
    assert by_parcel[second] == ["PENDING", "REJECTED"]
    rejected = next(u for u in updates if u.raw_code == "REJECTED")
    assert rejected.raw_text == "Client refuse le colis"
    assert rejected.occurred_at.isoformat() == "2030-09-03T11:00:00+01:00"
    assert "phone" not in rejected.raw


def test_track_skips_a_parcel_sendit_does_not_know(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number

    updates = adapter.track(["D9999999", code])

    assert {u.tracking_number for u in updates} == {code}


def test_a_webhook_with_a_good_signature_is_verified_and_parsed(fake, adapter):
    code = adapter.create_parcel(parcel()).tracking_number
    webhook = fake.webhook(code, "UNREACHABLE", message="Client injoignable")

    assert adapter.verify_webhook(webhook.headers, webhook.body)
    [update] = adapter.parse_webhook(webhook.headers, webhook.body)
    assert update.tracking_number == code
    assert update.raw_code == "UNREACHABLE"
    assert update.raw_text == "Client injoignable"
    assert update.raw["counterUnreachable"] == 1
    assert update.occurred_at is not None


def test_the_signature_header_is_read_whatever_its_case(fake, adapter):
    webhook = fake.webhook("D0000001", "DELIVERED")
    headers = {"x-sendit-signature": webhook.headers["X-Sendit-Signature"]}

    assert adapter.verify_webhook(headers, webhook.body)


def test_a_webhook_signed_with_another_secret_is_refused(fake, adapter):
    webhook = fake.webhook("D0000001", "DELIVERED", secret="not-the-secret")

    assert not adapter.verify_webhook(webhook.headers, webhook.body)


def test_a_webhook_whose_body_was_changed_is_refused(fake, adapter):
    webhook = fake.webhook("D0000001", "REJECTED")

    assert not adapter.verify_webhook(webhook.headers, webhook.body.replace(b"REJECTED", b"DELIVERED"))


def test_a_webhook_without_signature_or_without_a_configured_secret_is_refused(fake):
    webhook = fake.webhook("D0000001", "DELIVERED")
    adapter = SenditAdapter(fake.credentials, base_url=fake.api_url)

    assert not adapter.verify_webhook(webhook.headers, webhook.body)
    assert not SenditAdapter(fake.credentials, webhook_secret=fake.webhook_secret).verify_webhook(
        {}, webhook.body
    )


def test_an_unknown_district_is_an_invalid_address(fake, adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="999"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS
    assert error.value.code == "422"


def test_a_missing_field_is_a_permanent_error(fake, adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(recipient_name=""))

    assert error.value.kind == ErrorKind.PERMANENT
    assert "name" in error.value.text


def test_unknown_stock_products_are_a_permanent_error(fake, adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(options={"products_from_stock": True, "products": "P404:1"}))

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "251"


def test_an_error_inside_http_200_is_read_as_an_error(fake, adapter):
    adapter.find_parcel("warm-up")  # logged in
    fake.error_in_200_next("Montant invalide")

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.text == "Montant invalide"
    assert fake.deliveries == {}


def test_a_server_error_is_retryable(fake, adapter):
    adapter.find_parcel("warm-up")
    fake.fail_next(503, headers={"Retry-After": "20"})

    with pytest.raises(CarrierError) as error:
        adapter.track(["D0000001"])

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.retry_after == 20


def test_the_hourly_rate_limit_is_retryable_with_retry_after(fake, adapter):
    fake.hourly_limit = 2  # the login and one call

    adapter.create_parcel(parcel("LIV-1"))
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel("LIV-2"))

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.code == "429"
    assert 3500 < error.value.retry_after <= 3601


def test_a_create_that_times_out_is_unknown_and_the_parcel_is_found_again(fake):
    adapter = SenditAdapter(fake.credentials, base_url=fake.api_url, timeout=0.2)
    adapter.find_parcel("warm-up")
    fake.hang_next(0.5)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel("LIV-42"))

    assert error.value.kind == ErrorKind.UNKNOWN
    assert adapter.find_parcel("LIV-42") is not None


def test_a_refused_connection_is_retryable_even_on_a_create():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = SenditAdapter(
        {"PUBLIC_KEY": "k", "SECRET_KEY": "s"}, base_url=f"http://127.0.0.1:{port}/api/v1"
    )

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.RETRYABLE


def test_a_garbled_create_answer_is_unknown(fake, adapter):
    adapter.find_parcel("warm-up")
    fake.fail_next(200, b"<html>Maintenance</html>")

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.UNKNOWN


def test_every_raw_status_in_the_map_maps_to_a_state():
    for raw, (state, reason) in SenditAdapter.default_status_map.items():
        assert raw == fold(raw)
        assert isinstance(state, State)
        assert isinstance(reason, Reason)


def test_every_status_the_fake_can_emit_is_in_the_map():
    assert {fold(status) for status in STATUSES} == set(SenditAdapter.default_status_map)


def test_refusals_and_unreachable_customers_carry_their_reason():
    table = SenditAdapter.default_status_map
    assert table["rejected"] == (State.DELIVERY_FAILED, Reason.REFUSED)
    assert table["unreachable"] == (State.DELIVERY_FAILED, Reason.UNREACHABLE)
    assert table["delivered"] == (State.DELIVERED, Reason.NONE)


def test_cities_are_the_districts_across_all_pages(fake, adapter):
    cities = adapter.cities()

    assert [(c.carrier_city_id, c.name, c.zone) for c in cities][:2] == [
        ("1", "Casablanca - Ain sebaa", "Casablanca"),
        ("2", "Casablanca - Maarif", "Casablanca"),
    ]
    assert len(cities) == 4
    assert len(fake.calls("GET", "/districts")) == 2


def test_a_webhook_for_another_event_is_ignored(adapter):
    body = json.dumps({"event": "delivery.created", "code": "D0000001"}).encode()

    assert adapter.parse_webhook({}, body) == []
