"""The OpenAPI schema: valid, served to users only, and no request, valid or not, ends in a server
error or an answer that is not JSON.

The fuzz run calls the WSGI application in-process (no network) with a store member's token:
schemathesis's examples, its coverage phase (every boundary and wrong type the schema implies:
``page_size=null``, an id that is not a number…) and a bounded number of random cases per
operation, valid and invalid. Half of the generated ids and slugs are aimed at the member's real
store, orders and customers, so that the bodies reach the services instead of all stopping at "not
found".
"""

import json

import pytest
import schemathesis
from django.core.management import call_command
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from orders.api.tokens import api_token_create
from tests.api.conftest import member_of
from tests.factories import OrderFactory, StoreFactory, order_in_status


def test_the_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert "/api/orders/{id}/transitions/" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.django_db
def test_the_schema_needs_a_user():
    assert APIClient().get(reverse("api:schema")).status_code == 401


@pytest.mark.django_db
def test_swagger_ui_is_served_to_a_logged_in_user(store):
    client = APIClient()
    client.force_login(member_of(store))

    response = client.get(reverse("api:docs"))

    assert response.status_code == 200
    assert b"swagger-ui" in response.content


# --- fuzzing -------------------------------------------------------------------------------------
def served_schema() -> dict:
    """The document ``/api/schema/`` serves (same generator, same renderer), made without a request:
    the endpoint needs a user, and there is no database while tests are being collected.

    (``schemathesis.pytest.from_fixture``, which could fetch it in a test, fails on pytest 9.2 in
    schemathesis 4.32.5: it writes ``Node._nodeid``, which pytest 9.2 no longer has.)
    """
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


schema = schemathesis.openapi.from_dict(served_schema())
schema.app = application  # calls go to the WSGI application in-process, as from_wsgi() sets up


@pytest.fixture
def fuzzed_store():
    """A store with orders along the way, and a member of it (Store admin) with a token."""
    # The slug of the schema's request examples, so that the examples phase creates orders.
    store = StoreFactory(slug="atlas-souk", platform="custom")
    orders = [OrderFactory(store=store)] + [
        order_in_status(status, store=store) for status in ("awaiting_confirmation", "confirmed", "shipped")
    ]
    user = member_of(store)
    _token, key = api_token_create(user, name="fuzz")
    return {"store": store, "orders": orders, "authorization": f"Token {key}"}


@pytest.mark.django_db
def test_the_fuzzed_schema_is_the_one_the_api_serves(api_client):
    response = api_client.get(reverse("api:schema"), {"format": "json"})

    assert response.status_code == 200
    assert json.loads(response.content) == served_schema()


def error_answers_are_json(ctx, response, case) -> None:
    """Every 4xx and 5xx is JSON with a ``detail`` or a message per field, as DRF answers."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"{response.status_code} answered {content_type!r}"
    assert isinstance(response.json(), dict), "an error body is a JSON object"


def aim_at_real_objects(case, fuzzed_store) -> None:
    """Point about half of the generated references at the member's own store and objects."""
    orders = fuzzed_store["orders"]
    order_id = (case.path_parameters or {}).get("id")
    if isinstance(order_id, int) and order_id % 2 == 0:
        case.path_parameters["id"] = orders[order_id // 2 % len(orders)].pk
    body = case.body if isinstance(case.body, dict) else {}
    if isinstance(body.get("store"), str) and len(body["store"]) % 2 == 0:
        body["store"] = fuzzed_store["store"].slug
    customer = body.get("customer")
    if isinstance(customer, int) and customer % 2 == 0:
        body["customer"] = orders[customer // 2 % len(orders)].customer_id


# Transactional: the WSGI handler closes the connection after each request, as in production.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    database=None,  # no example database written into the checkout
)
def test_no_request_ends_in_a_server_error_or_an_answer_that_is_not_json(case, fuzzed_store):
    aim_at_real_objects(case, fuzzed_store)

    case.call_and_validate(
        headers={"Authorization": fuzzed_store["authorization"]},
        checks=[not_a_server_error, error_answers_are_json],
    )
