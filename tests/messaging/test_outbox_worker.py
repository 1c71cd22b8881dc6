"""The outbox seam end to end: PostgreSQL transactions, a Redis broker and a real Celery worker.

What is proved here cannot be seen with eager tasks: that the send is published only once the
status change has committed, that a rollback publishes nothing at all, and that a worker in
another process, on another connection, finds the committed outbox row and sends it once.
"""

import pytest
from django.db import transaction

from messaging.models import Message
from messaging.tasks import outbox_drain_task
from orders.models import Order, OrderEvent
from orders.services import order_transition

# Importing the fixtures is what makes pytest find them here (hence the F811 on the tests).
from tests.celery_worker import wait_for
from tests.factories import OrderFactory

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

SYSTEM = OrderEvent.Source.SYSTEM


class CallerFailedAfterTransition(Exception):
    """Stands for anything that fails in the caller's transaction after the status change."""


def request_confirmation_then_fail(order: Order) -> None:
    with pytest.raises(CallerFailedAfterTransition), transaction.atomic():
        order_transition(order, "request_confirmation", source=SYSTEM)
        raise CallerFailedAfterTransition


def sent(message: Message) -> Message | None:
    message.refresh_from_db()
    return message if message.status == Message.Status.SENT else None


def test_a_transition_publishes_exactly_one_task_once_it_commits(celery_idle_queue):
    order = OrderFactory()

    with transaction.atomic():
        order_transition(order, "request_confirmation", source=SYSTEM)
        assert celery_idle_queue.depth() == 0, "published before the status change committed"

    assert celery_idle_queue.depth() == 1


def test_a_rolled_back_transition_publishes_no_task(celery_idle_queue):
    order = OrderFactory()

    request_confirmation_then_fail(order)

    # test_a_transition_publishes_exactly_one_task_once_it_commits shows a publish is counted here.
    assert celery_idle_queue.depth() == 0


def test_a_rolled_back_transition_leaves_no_trace():
    # A real ROLLBACK on PostgreSQL, not the savepoint rollback of test_outbox_seam.py.
    order = OrderFactory()

    request_confirmation_then_fail(order)

    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.status_version) == ("placed", 0)
    assert not OrderEvent.objects.filter(order=order).exists()
    assert not Message.objects.filter(order=order).exists()


def test_a_committed_transition_is_recorded_once_and_sent_once_by_the_worker(celery_worker):
    order = OrderFactory()

    order_transition(order, "request_confirmation", source=SYSTEM)

    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.status_version) == ("awaiting_confirmation", 1)
    assert OrderEvent.objects.filter(order=order).exclude(type__startswith="automation_").count() == 1
    assert Message.objects.filter(order=order).count() == 1
    message = wait_for(lambda: sent(Message.objects.get(order=order)), what="the worker to send the message")
    assert message.provider_message_id.startswith("SB")
    assert message.attempts == 1
    assert len(celery_worker.tasks_received(outbox_drain_task.name)) == 1


def test_the_worker_receives_nothing_from_a_rolled_back_transition(celery_worker):
    rolled_back, later = OrderFactory(), OrderFactory()

    request_confirmation_then_fail(rolled_back)
    order_transition(later, "request_confirmation", source=SYSTEM)

    # The solo worker takes tasks in the order they were published: once the later order's
    # message is sent, a task published by the rollback would have been received before it.
    wait_for(lambda: sent(Message.objects.get(order=later)), what="the worker to send the later message")
    assert len(celery_worker.tasks_received(outbox_drain_task.name)) == 1
    assert not Message.objects.filter(order=rolled_back).exists()
