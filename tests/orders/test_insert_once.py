import pytest
from django.db import IntegrityError, transaction

from orders.insert_once import insert_many_once, insert_once
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


def test_many_rows_go_in_at_once_and_only_the_new_keys_are_inserted():
    store = StoreFactory()
    insert_once(delivery(store, "taken", topic="first"), KEY)
    rows = [delivery(store, "a"), delivery(store, "taken", topic="twin"), delivery(store, "b")]

    assert insert_many_once(rows, KEY) == [True, False, True]

    assert rows[1].pk is None
    assert {row.pk for row in (rows[0], rows[2])} == set(
        StoreDelivery.objects.filter(idempotency_key__in=["a", "b"]).values_list("pk", flat=True)
    )
    assert StoreDelivery.objects.get(idempotency_key="taken").topic == "first"


def test_the_same_key_twice_in_one_batch_is_inserted_once():
    store = StoreFactory()
    rows = [delivery(store, "same", topic="one"), delivery(store, "same", topic="two")]

    assert insert_many_once(rows, KEY) == [True, False]

    assert StoreDelivery.objects.get(idempotency_key="same").topic == "one"


def test_many_rows_cost_one_statement(django_assert_num_queries):
    store = StoreFactory()

    with django_assert_num_queries(1):
        insert_many_once([delivery(store, f"k{i}") for i in range(20)], KEY)
