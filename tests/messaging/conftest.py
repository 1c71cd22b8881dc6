"""Fixtures shared by the outbox, sweep and consent tests (the scripted provider fake)."""

import pytest

from tests.factories import OrderFactory
from tests.fakes.scripted_provider import SCRIPTED, use_scripted_provider


@pytest.fixture
def scripted():
    SCRIPTED.reset()
    yield SCRIPTED
    SCRIPTED.reset()


@pytest.fixture
def order():
    """An order whose store sends every channel through the scripted provider."""
    order = OrderFactory()
    use_scripted_provider(order.store)
    return order


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what the code asks to run after commit (the send task, inline), as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
