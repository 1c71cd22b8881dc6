"""Yalidine's adapter against a loopback Yalidine (tests/fakes/carrier_yalidine.py): wire format,
quotas, errors, histories and signed webhooks. No database: adapters are plain classes."""

import json
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
from carriers.adapters.yalidine import YalidineAdapter, raw_status
from tests.fakes.carrier_yalidine import FAILURE_REASONS, HOLD_REASONS, STATUSES, FakeYalidine


@pytest.fixture
def fake():
    with FakeYalidine() as server:
        yield server


@pytest.fixture
def adapter(fake):
    return YalidineAdapter(
        fake.credentials, base_url=fake.api_url, webhook_secret=fake.webhook_secret, timeout=2
    )


def parcel(reference="LIV-2001", city="Alger|Bordj El Kiffan", **overrides) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Amina Benali Kaci",
        "phone": "+213555123456",
        "address": "Cité Kaidi, bâtiment 4",
        "city": city,
        "cod_amount": Decimal("3400.00"),
        "currency": "DZD",
        "description": "Robe kabyle",
        "weight_kg": Decimal("1.2"),
        "options": {"from_wilaya_name": "Batna"},
    }
    values.update(overrides)
    return ParcelRequest(**values)


def test_the_adapter_is_registered_under_its_name():
    assert adapter_class("yalidine") is YalidineAdapter
    assert YalidineAdapter.credential_names == ("API_ID", "API_TOKEN")


def test_create_posts_an_array_keyed_by_our_order_id_with_the_api_headers(fake, adapter):
    created = adapter.create_parcel(parcel())

    request = fake.calls("POST", "/parcels")[0]
    assert request.headers["X-API-ID"] == fake.api_id
    assert request.headers["X-API-TOKEN"] == fake.api_token
    [sent] = request.json()
    assert sent["order_id"] == "LIV-2001"
    assert (sent["to_wilaya_name"], sent["to_commune_name"]) == ("Alger", "Bordj El Kiffan")
    assert sent["from_wilaya_name"] == "Batna"
    assert (sent["firstname"], sent["familyname"]) == ("Amina", "Benali Kaci")
    assert sent["contact_phone"] == "0555123456"
    assert sent["price"] == 3400
    assert sent["declared_value"] == 3400
    assert sent["weight"] == 2
    assert sent["is_stopdesk"] is False
    assert created.tracking_number in fake.parcels
    assert created.label_url.startswith(
        f"{fake.base_url}/app/bordereau.php?tracking={created.tracking_number}"
    )


def test_a_stop_desk_parcel_names_its_desk(fake, adapter):
    adapter.create_parcel(parcel(options={"from_wilaya_name": "Batna", "stopdesk_id": 163001}))

    [sent] = fake.calls("POST", "/parcels")[0].json()
    assert sent["is_stopdesk"] is True
    assert sent["stopdesk_id"] == 163001


def test_wrong_credentials_are_a_permanent_error(fake):
    adapter = YalidineAdapter({"API_ID": "1", "API_TOKEN": "nope"}, base_url=fake.api_url)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "401"
    assert fake.parcels == {}


def test_find_parcel_asks_by_order_id(fake, adapter):
    adapter.create_parcel(parcel("LIV-1"))
    created = adapter.create_parcel(parcel("LIV-2"))

    found = adapter.find_parcel("LIV-2")

    assert found.tracking_number == created.tracking_number
    assert found.fee == Decimal(500)
    assert fake.calls("GET", "/parcels")[0].query["order_id"] == ["LIV-2"]


def test_find_parcel_returns_none_when_yalidine_has_no_such_order(fake, adapter):
    assert adapter.find_parcel("LIV-404") is None


def test_cancel_deletes_a_parcel_still_in_preparation(fake, adapter):
    created = adapter.create_parcel(parcel())

    adapter.cancel_parcel(created.tracking_number)

    assert created.tracking_number not in fake.parcels
    assert fake.calls("DELETE", f"/parcels/{created.tracking_number}")


def test_cancel_after_pickup_is_a_permanent_error(fake, adapter):
    created = adapter.create_parcel(parcel())
    fake.push_status(created.tracking_number, "Ramassé")

    with pytest.raises(CarrierError) as error:
        adapter.cancel_parcel(created.tracking_number)

    assert error.value.kind == ErrorKind.PERMANENT
    assert created.tracking_number in fake.parcels


def test_label_is_the_parcels_pdf_fetched_without_the_api_credentials(fake, adapter):
    created = adapter.create_parcel(parcel())

    pdf = adapter.label_pdf([created.tracking_number])

    assert pdf.startswith(b"%PDF")
    label_request = next(r for r in fake.requests if r.path == "/app/bordereau.php")
    assert "X-API-TOKEN" not in label_request.headers


def test_labels_are_asked_one_parcel_at_a_time(adapter):
    with pytest.raises(CarrierError) as error:
        adapter.label_pdf(["yal-AAAAAA", "yal-BBBBBB"])

    assert error.value.kind == ErrorKind.PERMANENT


def test_track_reads_the_histories_of_a_batch_in_one_call(fake, adapter):
    first = adapter.create_parcel(parcel("LIV-1")).tracking_number
    second = adapter.create_parcel(parcel("LIV-2")).tracking_number
    fake.push_status(first, "Sorti en livraison", at="2030-05-09 09:00:00")
    fake.push_status(first, "Tentative échouée", reason="Client ne répond pas", at="2030-05-09 14:55:00")
    fake.push_status(second, "Livré", at="2030-05-09 12:00:00")

    updates = adapter.track([first, second])

    assert len(fake.calls("GET", "/histories")) == 1
    assert fake.calls("GET", "/histories")[0].query["tracking"] == [f"{first},{second}"]
    codes = [(u.tracking_number, u.raw_code) for u in updates]
    assert (first, "Tentative échouée: Client ne répond pas") in codes
    assert (second, "Livré") in codes
    failed = next(u for u in updates if u.raw_code.startswith("Tentative"))
    assert failed.raw_text == "Client ne répond pas"
    assert failed.occurred_at.isoformat() == "2030-05-09T14:55:00+01:00"
    assert "Aïn Arnat" in failed.location
    first_codes = [u.raw_code for u in updates if u.tracking_number == first]
    assert first_codes == ["En préparation", "Sorti en livraison", "Tentative échouée: Client ne répond pas"]


def test_track_follows_the_pages(fake, adapter):
    fake.page_size_cap = 2
    tracking = adapter.create_parcel(parcel()).tracking_number
    for status in ("Ramassé", "Expédié", "Centre", "Vers Wilaya"):
        fake.push_status(tracking, status)

    updates = adapter.track([tracking])

    assert len(updates) == 5
    assert len(fake.calls("GET", "/histories")) == 3


def test_a_status_webhook_with_a_good_signature_is_verified_and_parsed(fake, adapter):
    webhook = fake.status_webhook("yal-111AAA", "Tentative échouée", "Client absent (reporté)")

    assert adapter.verify_webhook(webhook.headers, webhook.body)
    [update] = adapter.parse_webhook(webhook.headers, webhook.body)
    assert update.tracking_number == "yal-111AAA"
    assert update.raw_code == "Tentative échouée: Client absent (reporté)"
    assert update.event_id == json.loads(webhook.body)["events"][0]["event_id"]
    assert update.occurred_at is not None
    assert YalidineAdapter.default_status_map[fold(update.raw_code)] == (
        State.DELIVERY_FAILED,
        Reason.POSTPONED,
    )


def test_a_webhook_carries_several_events(fake, adapter):
    webhook = fake.webhook(
        "parcel_status_updated",
        [
            {"tracking": "yal-111AAA", "status": "Sorti en livraison", "reason": None},
            {"tracking": "yal-222BBB", "status": "Livré"},
        ],
    )

    updates = adapter.parse_webhook(webhook.headers, webhook.body)

    assert [(u.tracking_number, u.raw_code) for u in updates] == [
        ("yal-111AAA", "Sorti en livraison"),
        ("yal-222BBB", "Livré"),
    ]


def test_a_deleted_parcel_webhook_reads_as_cancelled(fake, adapter):
    webhook = fake.webhook("parcel_deleted", [{"tracking": "yal-111AAA"}])

    [update] = adapter.parse_webhook(webhook.headers, webhook.body)

    assert YalidineAdapter.default_status_map[fold(update.raw_code)][0] == State.CANCELLED


def test_payment_and_creation_webhooks_are_not_tracking_updates(fake, adapter):
    payment = fake.webhook(
        "parcel_payment_updated", [{"tracking": "yal-111AAA", "status": "ready", "payment_id": None}]
    )

    assert adapter.parse_webhook(payment.headers, payment.body) == []


def test_a_webhook_signed_with_another_secret_is_refused(fake, adapter):
    webhook = fake.status_webhook("yal-111AAA", "Livré", secret="not-the-secret")

    assert not adapter.verify_webhook(webhook.headers, webhook.body)


def test_a_webhook_whose_body_was_changed_is_refused(fake, adapter):
    webhook = fake.status_webhook("yal-111AAA", "Echèc livraison")

    assert not adapter.verify_webhook(webhook.headers, webhook.body.replace(b"yal-111AAA", b"yal-999ZZZ"))


def test_a_webhook_without_a_signature_or_a_secret_is_refused(fake):
    webhook = fake.status_webhook("yal-111AAA", "Livré")

    assert not YalidineAdapter(fake.credentials, webhook_secret=fake.webhook_secret).verify_webhook(
        {}, webhook.body
    )
    assert not YalidineAdapter(fake.credentials).verify_webhook(webhook.headers, webhook.body)


def test_the_subscribe_check_echoes_the_crc_token(fake):
    query = fake.challenge()

    assert YalidineAdapter.webhook_challenge(query) == query["crc_token"]
    assert YalidineAdapter.webhook_challenge({}) is None


def test_an_unknown_commune_is_an_invalid_address_read_from_inside_http_200(fake, adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="Alger|Atlantis"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS
    assert "commune" in error.value.text
    assert fake.parcels == {}


def test_a_city_without_a_wilaya_is_an_invalid_address_without_a_call(fake, adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(city="Bordj El Kiffan"))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS
    assert fake.requests == []


def test_a_missing_field_is_a_permanent_error(fake, adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(address=""))

    assert error.value.kind == ErrorKind.PERMANENT
    assert error.value.code == "400"
    assert "address" in error.value.text


def test_a_server_error_is_retryable(fake, adapter):
    fake.fail_next(502)

    with pytest.raises(CarrierError) as error:
        adapter.track(["yal-111AAA"])

    assert error.value.kind == ErrorKind.RETRYABLE


def test_a_spent_minute_quota_is_retryable_with_retry_after(fake, adapter):
    fake.limits["minute"] = 2
    adapter.find_parcel("LIV-1")
    adapter.find_parcel("LIV-2")

    with pytest.raises(CarrierError) as error:
        adapter.find_parcel("LIV-3")

    assert error.value.kind == ErrorKind.RETRYABLE
    assert error.value.code == "429"
    assert 55 <= error.value.retry_after <= 61
    assert adapter.quota_left["minute"] == 0


def test_a_429_without_retry_after_waits_for_the_spent_window(fake, adapter):
    fake.fail_next(429, {"error": {"code": 429, "message": "Too many requests"}}, {"x-hour-quota-left": "0"})

    with pytest.raises(CarrierError) as error:
        adapter.find_parcel("LIV-1")

    assert error.value.retry_after == 3600


def test_quota_headers_are_kept_after_each_call(fake, adapter):
    adapter.find_parcel("LIV-1")

    assert adapter.quota_left == {"second": 4, "minute": 49, "hour": 999, "day": 9999}


def test_a_create_that_times_out_is_unknown_and_the_parcel_is_found_again(fake):
    adapter = YalidineAdapter(fake.credentials, base_url=fake.api_url, timeout=0.2)
    fake.hang_next(0.5)

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel("LIV-42"))

    assert error.value.kind == ErrorKind.UNKNOWN
    assert adapter.find_parcel("LIV-42") is not None


def test_a_garbled_create_answer_is_unknown(fake, adapter):
    fake.fail_next(200, b"<html>Maintenance</html>")

    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel())

    assert error.value.kind == ErrorKind.UNKNOWN


def test_every_raw_status_in_the_map_maps_to_a_state():
    for raw, (state, reason) in YalidineAdapter.default_status_map.items():
        assert raw == fold(raw)
        assert isinstance(state, State)
        assert isinstance(reason, Reason)


def test_every_status_and_reason_the_fake_can_emit_is_in_the_map():
    table = YalidineAdapter.default_status_map
    emitted = [*STATUSES]
    emitted += [
        raw_status(status, reason)
        for status in ("Tentative échouée", "Echèc livraison")
        for reason in FAILURE_REASONS
    ]
    emitted += [raw_status("Bloqué", reason) for reason in HOLD_REASONS]
    assert [raw for raw in emitted if fold(raw) not in table] == []


def test_reasons_split_refusals_from_absences_and_wrong_addresses():
    table = YalidineAdapter.default_status_map
    assert table[fold("Tentative échouée: Téléphone injoignable")] == (
        State.DELIVERY_FAILED,
        Reason.UNREACHABLE,
    )
    assert table[fold("Echèc livraison: Annulé par le client")] == (
        State.DELIVERY_FAILED,
        Reason.CUSTOMER_CANCELLED,
    )
    assert table[fold("Tentative échouée: Commune erronée")] == (State.DELIVERY_FAILED, Reason.WRONG_ADDRESS)
    assert table[fold("Retour vers vendeur")] == (State.RETURNING, Reason.NONE)
    assert table[fold("Retourné au vendeur")] == (State.RETURNED, Reason.NONE)
    assert fold("livr") not in table


def test_cities_are_the_communes_keyed_by_wilaya_and_name(fake, adapter):
    cities = adapter.cities()

    assert ("Alger|Bordj El Kiffan", "Bordj El Kiffan", "Alger") in [
        (c.carrier_city_id, c.name, c.zone) for c in cities
    ]
    assert len(cities) == len(fake.communes)


def test_a_city_from_the_list_is_accepted_by_create(fake, adapter):
    city = next(c for c in adapter.cities() if c.name == "Aïn Arnat")

    created = adapter.create_parcel(parcel(city=city.carrier_city_id))

    assert fake.parcels[created.tracking_number]["to_wilaya_name"] == "Sétif"


def test_an_unknown_sender_wilaya_is_a_permanent_error_not_an_address_one(fake, adapter):
    with pytest.raises(CarrierError) as error:
        adapter.create_parcel(parcel(options={"from_wilaya_name": "Gotham"}))

    assert error.value.kind == ErrorKind.PERMANENT
