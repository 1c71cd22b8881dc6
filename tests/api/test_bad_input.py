"""Bad input to the API is a 4xx in JSON that says what is wrong, never a server error or an HTML page."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order
from tests.api.test_orders_api import ORDERS, order_body

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    return response.json()


# --- times PostgreSQL cannot take ----------------------------------------------------------------
def test_a_filter_time_with_an_offset_postgresql_refuses_is_a_400_naming_the_filter(api_client):
    response = api_client.get(ORDERS, {"created_after": "2000-01-14T00:09:21-18:06"})

    assert assert_json_error(response, 400) == {
        "created_after": ["Give a UTC offset between -15:59 and +15:59."]
    }


def test_a_filter_time_in_year_one_with_an_offset_is_a_400(api_client):
    response = api_client.get(ORDERS, {"created_before": "0001-01-01T00:00:00+01:00"})

    assert list(assert_json_error(response, 400)) == ["created_before"]


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)
def test_any_time_python_can_read_is_answered_200_or_400_never_500(api_client, moment, offset_minutes):
    written = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()

    response = api_client.get(ORDERS, {"created_after": written})

    assert response.status_code in (200, 400), written


def test_an_order_placed_at_an_offset_no_zone_has_is_a_400_on_placed_at(api_client):
    response = api_client.post(ORDERS, order_body(placed_at="2026-11-20T10:00:00-18:06"), format="json")

    assert assert_json_error(response, 400) == {"placed_at": ["Give a UTC offset between -15:59 and +15:59."]}
    assert not Order.objects.exists()


def test_an_order_placed_at_a_real_offset_is_stored_at_that_instant(api_client):
    response = api_client.post(ORDERS, order_body(placed_at="2026-11-20T10:00:00+14:00"), format="json")

    assert response.status_code == 201
    assert Order.objects.get().placed_at == datetime(2026, 11, 19, 20, 0, tzinfo=UTC)


# --- bodies ----------------------------------------------------------------------------------------
def test_a_body_of_5000_nested_brackets_is_a_400_not_a_recursion_error(api_client):
    response = api_client.post(ORDERS, data="[" * 5000, content_type="application/json")

    assert assert_json_error(response, 400) == {"detail": "JSON parse error - nested deeper than 64 levels"}


def test_deeply_nested_but_well_formed_json_is_a_400(api_client):
    body = '{"store": ' + "[" * 100 + "]" * 100 + "}"

    response = api_client.post(ORDERS, data=body, content_type="application/json")

    assert "nested deeper" in assert_json_error(response, 400)["detail"]


def test_a_body_over_the_upload_limit_is_a_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api_client.post(ORDERS, order_body(notes="x" * 2000), format="json")

    assert assert_json_error(response, 413) == {"detail": "Request body too large."}
    assert not Order.objects.exists()


def test_a_body_in_a_charset_that_is_no_text_encoding_is_a_400(api_client):
    response = api_client.post(ORDERS, data=b"{}", content_type="application/json; charset=bz2_codec")

    assert assert_json_error(response, 400)["detail"].startswith("Unsupported charset")


# --- paths -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/api/orders/abc/", "/api/orders/1.5/transitions/", "/api/orders/-1/", "/api/nothing-here/"]
)
def test_a_path_under_api_that_names_nothing_is_a_json_404(api_client, path):
    assert assert_json_error(api_client.get(path), 404) == {"detail": "Not found."}


def test_a_path_outside_the_api_still_gets_the_html_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_the_endpoint_does_not_have_is_a_json_405(api_client):
    response = api_client.delete(ORDERS)

    assert assert_json_error(response, 405) == {"detail": 'Method "DELETE" not allowed.'}


# --- page_size -------------------------------------------------------------------------------------
@pytest.mark.parametrize("given_size", ["null", "", "0", "-3", "1.5", "abc"])
def test_a_page_size_that_is_not_a_whole_number_from_1_is_a_400_on_page_size(api_client, given_size):
    response = api_client.get(ORDERS, {"page_size": given_size})

    assert list(assert_json_error(response, 400)) == ["page_size"]


def test_a_page_that_does_not_exist_is_a_json_404(api_client):
    assert assert_json_error(api_client.get(ORDERS, {"page": "abc"}), 404) == {"detail": "Invalid page."}


def test_the_schema_says_page_size_starts_at_1_and_is_read_as_200_past_it(api_client):
    schema = api_client.get(reverse("api:schema"), {"format": "json"}).json()

    parameter = next(
        p for p in schema["paths"]["/api/orders/"]["get"]["parameters"] if p["name"] == "page_size"
    )
    assert parameter["schema"] == {"type": "integer", "minimum": 1}
    assert "200" in parameter["description"]
