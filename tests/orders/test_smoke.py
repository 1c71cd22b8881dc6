import pytest

from orders.models import OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_a_cod_order_can_be_asked_for_confirmation():
    order = OrderFactory()
    event = order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    assert event.to_status == "awaiting_confirmation"
    assert order.status == "awaiting_confirmation"
    assert order.messages.get().status == "sent"
