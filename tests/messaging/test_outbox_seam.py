"""The outbox seam without a broker: a status change asks for its send only if it commits.

Runs on every database. The PostgreSQL + Redis + real worker version of the same promise is in
``test_outbox_worker.py``.
"""

import pytest
from django.db import transaction

from messaging.models import Message
from orders.models import Order, OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

SYSTEM = OrderEvent.Source.SYSTEM


class CallerFailedAfterTransition(Exception):
    """Stands for anything that fails in the caller's transaction after the status change."""


def test_a_committed_transition_asks_for_exactly_one_send(django_capture_on_commit_callbacks):
    order = OrderFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order_transition(order, "request_confirmation", source=SYSTEM)

    assert len(callbacks) == 1
    # Tasks run inline here, so running the callback is the send (the sandbox then simulates
    # the delivery receipt, which moves the message on to delivered and read).
    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()
    message = Message.objects.get(order=order)
    assert message.provider_message_id and message.sent_at is not None


def test_a_rolled_back_transition_asks_for_no_send(django_capture_on_commit_callbacks):
    order = OrderFactory()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(CallerFailedAfterTransition),
        transaction.atomic(),
    ):
        order_transition(order, "request_confirmation", source=SYSTEM)
        raise CallerFailedAfterTransition

    assert callbacks == []


def test_a_rolled_back_transition_leaves_no_status_change_event_or_message():
    order = OrderFactory()

    with pytest.raises(CallerFailedAfterTransition), transaction.atomic():
        order_transition(order, "request_confirmation", source=SYSTEM)
        raise CallerFailedAfterTransition

    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.status_version) == ("placed", 0)
    assert not OrderEvent.objects.filter(order=order).exists()
    assert not Message.objects.filter(order=order).exists()
