"""A batch whose task was lost (the broker down when the action committed) is sent again by the
minute's sweep; a fresh one is left to its own task."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from carriers.models import DispatchBatch, Shipment
from carriers.services import dispatch_batch_create
from carriers.services.dispatch import dispatch_batches_sweep
from carriers.tasks import dispatch_batches_sweep_task
from orders.transitions import OrderStatus
from tests.factories import CarrierAccountFactory, order_in_status

pytestmark = pytest.mark.django_db


def queued_batch():
    account = CarrierAccountFactory()
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    return dispatch_batch_create(account, [order], None)


def test_a_batch_still_queued_minutes_after_it_was_made_is_run_by_the_sweep():
    batch = queued_batch()

    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert dispatch_batches_sweep() == 1  # the tests run tasks inline: published is run

    batch.refresh_from_db()
    assert batch.status == DispatchBatch.Status.DONE
    assert Shipment.objects.filter(batch=batch, create_status="created").count() == 1


def test_a_fresh_queued_batch_is_left_to_its_own_task():
    batch = queued_batch()

    assert dispatch_batches_sweep() == 0
    batch.refresh_from_db()
    assert batch.status == DispatchBatch.Status.QUEUED


def test_the_dispatch_sweep_runs_every_minute_through_celery_beat():
    task = PeriodicTask.objects.get(name="carriers: dispatch batches sweep")

    assert task.task == dispatch_batches_sweep_task.name == "carriers.dispatch_batches_sweep"
    assert (task.interval.every, task.interval.period) == (60, "seconds")
