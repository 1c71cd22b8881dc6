import pytest
from django.db import IntegrityError, transaction

from orders.insert_once import insert_once
from orders.models import StoreDelivery
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db
KEY = ("store", "platform", "idempotency_key")


def delivery(store, key: str = "k1", **fields) -> StoreDelivery:
    return StoreDelivery(store=store, platform="shopify", idempotency_key=key, body=b"{}", **fields)


def test_a_new_row_is_inserted_with_its_id_and_auto_fields_set():
    row = delivery(StoreFactory())

    assert insert_once(row, KEY) is True

    stored = StoreDelivery.objects.get(pk=row.pk)
    assert stored.idempotency_key == "k1"
    assert stored.received_at == row.received_at is not None
    assert not row._state.adding


def test_a_row_whose_key_is_taken_inserts_nothing_and_leaves_the_transaction_usable():
    store = StoreFactory()
    first = delivery(store, topic="first")
    insert_once(first, KEY)

    with transaction.atomic():
        twin = delivery(store, topic="twin")
        assert insert_once(twin, KEY) is False
        assert twin.pk is None
        assert StoreDelivery.objects.get().topic == "first"  # no error: the transaction goes on


def test_a_row_breaking_another_constraint_still_raises():
    store = StoreFactory()
    insert_once(delivery(store), KEY)

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_once(delivery(store), ("id",))  # the conflict named is not the one broken
