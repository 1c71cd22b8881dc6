"""Fixtures for the automations tests: a store with its default rules, orders waiting for an
answer, replies, and sweeps run at a moment in the future."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
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
