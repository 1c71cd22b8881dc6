"""API test fixtures: a store, a member of it with a token, and a client that sends the token."""

import itertools

import pytest
from rest_framework.test import APIClient

from messaging.models import Message
from orders.api.tokens import api_token_create
from tests.factories import StoreFactory, UserFactory

_message_keys = itertools.count(1)


def client_with_token(user) -> APIClient:
    _token, key = api_token_create(user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def member_of(store, *, groups=("Store admin",), **fields):
    """A user who works on ``store``, in ``groups`` (the default groups made by migrations)."""
    user = UserFactory(groups=list(groups), **fields)
    store.members.add(user)
    return user


def message_for(order, **fields) -> Message:
    """An outbox row about ``order`` as the send path leaves it (the API only reads them)."""
    values = {
        "event": "confirmation_requested",
        "channel": "whatsapp",
        "provider": "sandbox",
        "status": Message.Status.SENT,
        "idempotency_key": f"test-message-{next(_message_keys)}",
        **fields,
    }
    return Message.objects.create(order=order, customer=order.customer, **values)


@pytest.fixture
def store():
    return StoreFactory(slug="atlas-souk", platform="custom", default_phone_region="MA")


@pytest.fixture
def other_store():
    return StoreFactory(slug="other-shop", platform="custom")


@pytest.fixture
def user(store):
    return member_of(store)


@pytest.fixture
def api_client(user) -> APIClient:
    return client_with_token(user)
