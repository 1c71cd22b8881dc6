"""Reloading an order's protected status, in one thread and in several at once.

``Order.status`` is protected (a plain assignment raises); reloading it from the database must
still work, in every thread of a worker's threads pool at the same time, without ever letting
another thread assign it. The threaded tests hold one thread's reload inside its query (a
``connection.execute_wrapper`` of that thread's own connection) while another reloads start to
end, so the overlap that a threads pool only hits now and then happens on every run.
"""

import threading

import pytest
from django.db import connection

from orders.models import Order, OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory

TIMEOUT = 10.0


class HeldReload(threading.Thread):
    """Reloads ``order``'s status on a thread (and a connection) of its own, and stops inside the
    reload's query, after the database answered, until ``release()``."""

    def __init__(self, order: Order):
        super().__init__(daemon=True)
        self.order = order
        self.inside = threading.Event()
        self._released = threading.Event()
        self.error: BaseException | None = None

    def _hold(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        self.inside.set()
        self._released.wait(TIMEOUT)
        return result

    def run(self) -> None:
        try:
            with connection.execute_wrapper(self._hold):
                self.order.refresh_from_db(fields=["status"])
        except BaseException as exc:  # surfaced by finish(): a thread's exception is otherwise lost
            self.error = exc
        finally:
            self.inside.set()
            connection.close()

    def begin(self) -> "HeldReload":
        self.start()
        assert self.inside.wait(TIMEOUT), "the held reload never reached its query"
        return self

    def finish(self) -> None:
        self._released.set()
        self.join(TIMEOUT)
        assert not self.is_alive(), "the held reload did not finish"
        if self.error is not None:
            raise self.error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_status_reloads_that_overlap_in_two_threads_both_succeed():
    # given two threads reloading an order each (order_transition reloads the caller's instance,
    # ingestion reloads an order before each shipment move), the second starting while the
    # first is under way
    first = HeldReload(OrderFactory()).begin()
    second = HeldReload(OrderFactory()).begin()

    # when the first ends before the second
    first.finish()

    # then the second ends well too
    second.finish()
    assert (first.order.status, second.order.status) == ("placed", "placed")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_status_reload_under_way_in_one_thread_leaves_the_status_protected_in_the_others():
    held = HeldReload(OrderFactory()).begin()
    other = OrderFactory()

    try:
        with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
            other.status = "confirmed"
    finally:
        held.finish()


@pytest.mark.django_db
def test_a_full_reload_brings_the_status_a_transition_elsewhere_committed():
    order = OrderFactory()
    order_transition(order.pk, "request_confirmation", source=OrderEvent.Source.SYSTEM)

    order.refresh_from_db()

    assert (order.status, order.status_version) == ("awaiting_confirmation", 1)


@pytest.mark.django_db
def test_the_status_stays_protected_after_a_reload():
    order = OrderFactory()
    order.refresh_from_db(fields=["status"])

    with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
        order.status = "confirmed"


@pytest.mark.django_db
def test_a_reloaded_order_saves_after_a_transition_elsewhere():
    # django-fsm's concurrency guard compares with the status the instance last loaded
    order = OrderFactory()
    order_transition(order.pk, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    order.refresh_from_db(fields=["status"])

    order.notes = "call after 18h"
    order.save(update_fields=["notes"])

    assert Order.objects.get(pk=order.pk).notes == "call after 18h"
