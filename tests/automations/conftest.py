"""Fixtures for the automations tests: a store with its default rules, orders waiting for an
answer, replies, and sweeps run at a moment in the future."""

import itertools
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from automations.models import Rule, SweepRun
from automations.services.sweep import timers_sweep
from messaging.models import Channel
from messaging.providers import InboundReply
from messaging.services.inbound import inbound_reply_handle
from orders.transitions import OrderStatus
from tests.factories import StoreFactory, order_in_status

_message_ids = itertools.count(1)


@pytest.fixture
def store():
    """A new store: it comes with the default rules."""
    return StoreFactory()


@pytest.fixture
def awaiting(store):
    """Make an order of ``store`` that was just asked to confirm (its timers started)."""

    def make(total_amount=Decimal("249.00"), **kwargs):
        return order_in_status(
            OrderStatus.AWAITING_CONFIRMATION, store=store, total_amount=total_amount, **kwargs
        )

    return make


@pytest.fixture
def default_rule(store):
    """The store's default rule with this key."""
    return lambda key: Rule.objects.get(store=store, key=key)


def _sweep_after(delta: timedelta, *, batch_size: int = 500) -> SweepRun:
    with time_machine.travel(timezone.now() + delta, tick=False):
        return timers_sweep(batch_size)


@pytest.fixture
def sweep_after():
    """Run one timer sweep ``delta`` from now (the clock stands still there)."""
    return _sweep_after


def two_sweeps_at_once(delta: timedelta, *, batch_size: int) -> list[SweepRun]:
    """Two sweeps in two threads (two database connections), started together ``delta`` from now;
    their runs. An exception in either thread is raised here (in a thread it would vanish)."""
    start = threading.Barrier(2)
    runs, failures = [], []

    def sweep():
        try:
            start.wait(timeout=10)
            runs.append(timers_sweep(batch_size=batch_size))
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    with time_machine.travel(timezone.now() + delta, tick=False):
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    if failures:
        raise failures[0]
    assert len(runs) == 2, "a sweep did not finish within a minute"
    return runs


def _reply(order, text: str = "", *, button_payload: str = "", channel: str = Channel.WHATSAPP):
    message = InboundReply(
        channel=channel,
        sender=order.customer.phone,
        provider_message_id=f"AUTOIN{next(_message_ids)}",
        text=text,
        button_payload=button_payload,
    )
    return inbound_reply_handle(order.store, "sandbox", message)


@pytest.fixture
def reply():
    """The order's customer answers (WhatsApp unless told), through the real inbound handling."""
    return _reply
