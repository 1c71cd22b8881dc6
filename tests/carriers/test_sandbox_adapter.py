"""The sandbox carrier: the adapter interface without network, its parcels in the database."""

import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from carriers.adapters import CarrierError, ErrorKind, ParcelRequest, adapter_class
from carriers.adapters.sandbox import SIGNATURE_HEADER, SandboxCarrier, sign
from carriers.models import SandboxParcel
from carriers.services import carrier_account_adapter
from tests.factories import CarrierAccountFactory

pytestmark = pytest.mark.django_db


def parcel(reference="#1042", **fields) -> ParcelRequest:
    values = {
        "reference": reference,
        "recipient_name": "Yasmine Alaoui",
        "phone": "+212612345678",
        "address": "12 Rue Ibn Battouta",
        "city": "1",
        "cod_amount": Decimal("249.00"),
        "currency": "MAD",
    }
    return ParcelRequest(**{**values, **fields})


@pytest.fixture
def account():
    return CarrierAccountFactory()


@pytest.fixture
def carrier(account):
    return SandboxCarrier({}, webhook_secret="s3cret", account=account)


def test_the_sandbox_is_registered_by_name():
    assert adapter_class("sandbox") is SandboxCarrier


def test_a_created_parcel_gets_a_sandbox_tracking_number_and_a_fee(carrier):
    created = carrier.create_parcel(parcel())

    assert created.tracking_number.startswith("SBX")
    assert created.fee == Decimal("25.00")
    assert created.carrier_reference == "#1042"


def test_creating_the_same_reference_again_answers_the_same_parcel(carrier):
    first = carrier.create_parcel(parcel())

    assert carrier.create_parcel(parcel()) == first
    assert carrier.find_parcel("#1042") == first
    assert carrier.find_parcel("#9999") is None


def test_a_parcel_without_a_city_is_an_invalid_address(carrier):
    with pytest.raises(CarrierError) as error:
        carrier.create_parcel(parcel(city=""))

    assert error.value.kind == ErrorKind.INVALID_ADDRESS


def test_the_label_is_a_pdf(carrier):
    created = carrier.create_parcel(parcel())

    pdf = carrier.label_pdf([created.tracking_number])

    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    assert created.tracking_number in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_tracking_returns_what_the_parcel_went_through(carrier):
    number = carrier.create_parcel(parcel()).tracking_number
    carrier.record_event(number, "PICKED_UP")

    assert [update.raw_code for update in carrier.track([number, "SBX-unknown"])] == ["CREATED", "PICKED_UP"]


def test_a_parcel_that_left_cannot_be_cancelled(carrier):
    number = carrier.create_parcel(parcel()).tracking_number
    carrier.record_event(number, "PICKED_UP")

    with pytest.raises(CarrierError) as error:
        carrier.cancel_parcel(number)

    assert error.value.kind == ErrorKind.PERMANENT


def test_cancelling_a_waiting_parcel_reports_it_cancelled(carrier):
    number = carrier.create_parcel(parcel()).tracking_number

    carrier.cancel_parcel(number)

    assert carrier.track([number])[-1].raw_code == "CANCELLED"


def test_a_webhook_signed_with_the_secret_is_verified_and_parsed(carrier):
    number = carrier.create_parcel(parcel()).tracking_number
    body = carrier.webhook_body([carrier.record_event(number, "OUT_FOR_DELIVERY", "Livreur: Said")])

    assert carrier.verify_webhook({SIGNATURE_HEADER.lower(): sign("s3cret", body)}, body)
    [update] = carrier.parse_webhook({}, body)
    assert (update.tracking_number, update.raw_code, update.raw_text) == (
        number,
        "OUT_FOR_DELIVERY",
        "Livreur: Said",
    )
    assert update.event_id and update.occurred_at is not None


def test_a_webhook_with_a_wrong_or_missing_signature_is_refused(carrier):
    body = b'{"events": []}'

    assert not carrier.verify_webhook({SIGNATURE_HEADER: sign("other", body)}, body)
    assert not carrier.verify_webhook({}, body)


def test_parcels_are_kept_in_the_database_where_another_process_finds_them(carrier, account):
    created = carrier.create_parcel(parcel())
    carrier.record_event(created.tracking_number, "PICKED_UP")

    stored = SandboxParcel.objects.get(tracking_number=created.tracking_number)
    elsewhere = SandboxCarrier({}, account=account)  # as the worker or beat would build it
    assert (stored.account, stored.reference, stored.request["cod_amount"]) == (account, "#1042", "249.00")
    assert elsewhere.find_parcel("#1042") == created
    assert [update.raw_code for update in elsewhere.track([created.tracking_number])] == [
        "CREATED",
        "PICKED_UP",
    ]


def test_the_same_reference_at_two_accounts_is_two_parcels(carrier):
    other = SandboxCarrier({}, account=CarrierAccountFactory())

    assert other.create_parcel(parcel()).tracking_number != carrier.create_parcel(parcel()).tracking_number


def test_the_account_adapter_is_bound_to_its_account(account):
    assert carrier_account_adapter(account).account == account


def test_a_sandbox_without_its_account_cannot_create_parcels():
    with pytest.raises(CarrierError) as error:
        SandboxCarrier().create_parcel(parcel())

    assert error.value.kind == ErrorKind.PERMANENT


def test_the_sandbox_lists_its_cities(carrier):
    assert "Casablanca" in {city.name for city in carrier.cities()}
