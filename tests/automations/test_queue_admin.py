"""The confirmation queue in admin: open entries by priority then age, who to call and why, and
"mark done" (``queue_entry_close``) for those allowed to change entries."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automations.models import QueueEntry
from automations.services.queue import queue_entry_close
from orders.models import OrderEvent, Store
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

OPEN, DONE = QueueEntry.State.OPEN, QueueEntry.State.DONE


# --- helpers ---------------------------------------------------------------------------------
def agent(client, *extra: str):
    user = grant(
        UserFactory(stores=Store.objects.all()),
        "automations.view_queueentry",
        "automations.change_queueentry",
        *extra,
    )
    client.force_login(user)
    return user


def viewer(client):
    user = grant(UserFactory(stores=Store.objects.all()), "automations.view_queueentry")
    client.force_login(user)
    return user


def queued(order=None, *, priority=50, reason="no answer to the confirmation request in 2 h", **fields):
    return QueueEntry.objects.create(
        order=order or OrderFactory(), priority=priority, reason=reason, **fields
    )


def changelist_url(**query) -> str:
    url = reverse("admin:automations_queueentry_changelist")
    return url + ("?" + urlencode(query) if query else "")


def listed(response) -> list[QueueEntry]:
    return list(response.context["cl"].result_list)


def mark_done(client, *entries, **query):
    return client.post(
        changelist_url(**query),
        {"action": "mark_done", "_selected_action": [entry.pk for entry in entries]},
        follow=True,
    )


# --- the list --------------------------------------------------------------------------------
def test_the_queue_lists_open_entries_by_priority_then_oldest_first(client):
    # given entries made at different times with different priorities
    start = timezone.now() - timedelta(hours=3)
    with time_machine.travel(start, tick=False):
        older_normal = queued(priority=50)
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        urgent = queued(priority=90)
        newer_normal = queued(priority=50)
    queued(priority=99, state=DONE, closed_at=timezone.now())
    viewer(client)

    # when an agent opens the queue
    response = client.get(changelist_url())

    # then it shows what is still open, most urgent first, then who has waited longest
    assert listed(response) == [urgent, older_normal, newer_normal]


def test_the_queue_shows_the_order_link_the_customer_to_call_and_the_reason(client):
    customer = CustomerFactory(name="Salma Bennani", phone_raw="0612345678")
    order = OrderFactory(store=customer.store, customer=customer, number="#5001")
    queued(order, reason="the customer's answer needs a human")
    viewer(client)

    page = client.get(changelist_url()).content.decode()

    assert reverse("admin:orders_order_change", args=[order.pk]) in page
    assert "#5001" in page
    assert "Salma Bennani" in page
    assert "+212612345678" in page
    assert "the customer&#x27;s answer needs a human" in page


@pytest.mark.parametrize(("state", "expected"), [("done", {"done"}), ("all", {"open", "done"})])
def test_the_queue_filters_by_state(client, state, expected):
    entries = {"open": queued(), "done": queued(state=DONE, closed_at=timezone.now())}
    viewer(client)

    response = client.get(changelist_url(state=state))

    assert set(listed(response)) == {entries[name] for name in expected}


def test_the_queue_filters_by_store(client):
    store, other = StoreFactory(), StoreFactory()
    mine = queued(OrderFactory(store=store))
    queued(OrderFactory(store=other))
    viewer(client)

    response = client.get(changelist_url(order__store__id__exact=store.pk))

    assert listed(response) == [mine]


def test_the_queue_finds_a_customer_by_the_number_as_an_agent_types_it(client):
    customer = CustomerFactory(phone_raw="+212 6 99 88 77 66")
    entry = queued(OrderFactory(store=customer.store, customer=customer))
    queued()
    viewer(client)

    response = client.get(changelist_url(q="0699887766"))

    assert listed(response) == [entry]


def test_the_queue_costs_the_same_queries_for_one_entry_or_many(client):
    queued()
    viewer(client)
    with CaptureQueriesContext(connection) as one_entry:
        client.get(changelist_url())
    for _ in range(5):
        queued()

    with CaptureQueriesContext(connection) as six_entries:
        client.get(changelist_url())

    assert len(six_entries) == len(one_entry)


def test_a_user_without_queue_permissions_gets_403(client):
    entry = queued()
    client.force_login(UserFactory())

    assert client.get(changelist_url()).status_code == 403
    assert client.get(reverse("admin:automations_queueentry_change", args=[entry.pk])).status_code == 403


# --- mark done -------------------------------------------------------------------------------
def test_marking_entries_done_closes_them_and_says_so_on_the_order(client):
    first, second, other = queued(), queued(), queued()
    user = agent(client)

    response = mark_done(client, first, second)

    for entry in (first, second):
        entry.refresh_from_db()
        assert entry.state == DONE
        assert entry.closed_at is not None
        assert (entry.closed_by, entry.close_reason) == (user, "marked done by an agent")
        event = OrderEvent.objects.get(order=entry.order, type="queue_entry_closed")
        assert (event.source, event.actor, event.reason) == (OrderEvent.Source.AGENT, user, entry.reason)
    other.refresh_from_db()
    assert other.state == OPEN
    assert listed(response) == [other]


def test_the_confirmation_agent_group_may_mark_entries_done(client):
    entry = queued()
    client.force_login(UserFactory(groups=["Confirmation agent"], stores=Store.objects.all()))

    mark_done(client, entry)

    entry.refresh_from_db()
    assert entry.state == DONE


def test_a_view_only_user_cannot_mark_entries_done(client):
    entry = queued()
    viewer(client)

    page = client.get(changelist_url()).content.decode()
    mark_done(client, entry)

    entry.refresh_from_db()
    assert entry.state == OPEN
    assert 'value="mark_done"' not in page
    assert not OrderEvent.objects.filter(type="queue_entry_closed").exists()


def test_closing_an_entry_twice_changes_nothing_the_second_time():
    entry = queued()
    assert queue_entry_close(entry, actor=None) is True
    closed_at = QueueEntry.objects.get(pk=entry.pk).closed_at

    assert queue_entry_close(QueueEntry.objects.get(pk=entry.pk), actor=None) is False

    assert QueueEntry.objects.get(pk=entry.pk).closed_at == closed_at
    assert OrderEvent.objects.filter(order=entry.order, type="queue_entry_closed").count() == 1


def test_once_done_an_order_can_be_queued_again():
    entry = queued()
    queue_entry_close(entry, actor=None)

    again = queued(entry.order, reason="called back, no answer")

    assert list(QueueEntry.objects.filter(order=entry.order, state=OPEN)) == [again]


# --- the entry page --------------------------------------------------------------------------
def test_an_entry_page_is_read_only_and_entries_are_neither_added_nor_deleted(client):
    entry = queued()
    agent(client)
    change = reverse("admin:automations_queueentry_change", args=[entry.pk])

    page = client.get(change)

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change, {"reason": "edited", "priority": 1}).status_code == 403
    assert client.get(reverse("admin:automations_queueentry_add")).status_code == 403
    assert client.post(reverse("admin:automations_queueentry_delete", args=[entry.pk])).status_code == 403
    entry.refresh_from_db()
    assert (entry.reason, entry.priority) == ("no answer to the confirmation request in 2 h", 50)
