import pytest

from orders.phones import normalize_phone
from tests.factories import CustomerFactory, StoreFactory


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("0612345678", "MA", "+212612345678"),
        ("07 12 34 56 78", "MA", "+212712345678"),
        ("+212 6 12 34 56 78", "MA", "+212612345678"),
        ("00212612345678", "MA", "+212612345678"),
        ("9876543210", "IN", "+919876543210"),
        ("0501234567", "AE", "+971501234567"),
    ],
)
def test_local_numbers_become_e164_with_the_store_region(raw, region, expected):
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "   ", "12", "not a phone", "0612"])
def test_invalid_numbers_normalize_to_none(raw):
    assert normalize_phone(raw, "MA") is None


@pytest.mark.django_db
def test_a_customer_phone_is_stored_in_e164_next_to_what_was_typed():
    customer = CustomerFactory(store=StoreFactory(default_phone_region="MA"), phone_raw="06 61 23 45 67")
    assert customer.phone == "+212661234567"
    assert customer.phone_raw == "06 61 23 45 67"


@pytest.mark.django_db
def test_an_invalid_phone_is_kept_raw_and_flagged_not_dropped():
    customer = CustomerFactory(phone_raw="06 12")
    assert customer.phone == ""
    assert customer.phone_raw == "06 12"
    assert not customer.phone_is_valid
