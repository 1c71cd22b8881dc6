"""The store inbox in admin: list and filters, the raw delivery, and retrying failed ones."""

import itertools
import json
from datetime import datetime
from html import escape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from orders.models import Store, StoreDelivery
from orders.services.ingest import MAX_ATTEMPTS
from tests.factories import OrderFactory, StoreFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

D = StoreDelivery.Status
SHOPIFY_ORDER = {
    "id": 820982911946154508,
    "name": "#1042",
    "phone": "+212612345678",
    "note": "Livrer après 18h",
}
TRACE = "Traceback (most recent call last):\n  File \"orders/services/ingest.py\", line 1\nKeyError: 'id'"
_keys = itertools.count(1)


# --- helpers ---------------------------------------------------------------------------------
def viewer(client):
    user = grant(UserFactory(stores=Store.objects.all()), "orders.view_storedelivery", "orders.view_order")
    client.force_login(user)
    return user


def retrier(client):
    user = grant(
        UserFactory(stores=Store.objects.all()), "orders.view_storedelivery", "orders.retry_storedelivery"
    )
    client.force_login(user)
    return user


def delivery(**fields) -> StoreDelivery:
    values = {
        "platform": "shopify",
        "topic": "orders/create",
        "idempotency_key": f"event-{next(_keys)}",
        "headers": {"X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": "atlas-souk.myshopify.com"},
        "body": json.dumps(SHOPIFY_ORDER).encode(),
        **fields,
    }
    if "store" not in values:
        values["store"] = StoreFactory()
    return StoreDelivery.objects.create(**values)


def failed_delivery(**fields) -> StoreDelivery:
    """A delivery that failed once, whose body is not JSON: processing it again flags it, every time."""
    values = {
        "status": D.FAILED,
        "attempts": 1,
        "body": b"<html>not json</html>",
        "error": "KeyError: 'id'",
        "error_trace": TRACE,
        **fields,
    }
    return delivery(**values)


def changelist_url(**query) -> str:
    url = reverse("admin:orders_storedelivery_changelist")
    return url + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")


def change_url(item) -> str:
    return reverse("admin:orders_storedelivery_change", args=[item.pk])


def retry_url(item) -> str:
    return reverse("admin:orders_storedelivery_retry", args=[item.pk])


def listed(response) -> set[int]:
    return {item.pk for item in response.context["cl"].result_list}


def flashed(response) -> list[str]:
    return [message.message for message in response.context["messages"]]


# --- the list --------------------------------------------------------------------------------
def test_the_inbox_lists_deliveries_with_their_status_attempts_order_and_error(client):
    order = OrderFactory(number="#1042")
    processed = delivery(store=order.store, status=D.PROCESSED, order=order, attempts=1)
    failed = failed_delivery()
    viewer(client)

    response = client.get(changelist_url())

    page = response.content.decode()
    assert listed(response) == {processed.pk, failed.pk}
    assert reverse("admin:orders_order_change", args=[order.pk]) in page
    assert 'class="delivery-status-badge"' in page
    assert escape("KeyError: 'id'") in page


def test_the_inbox_shows_when_a_retrying_delivery_is_tried_again_and_which_attempt_that_is(client):
    due = timezone.make_aware(datetime(2026, 12, 3, 14, 5), timezone.get_default_timezone())
    failed_delivery(status=D.RETRYING, attempts=2, next_attempt_at=due)
    viewer(client)

    page = client.get(changelist_url()).content.decode()

    assert f"{date_format(due, 'DATETIME_FORMAT')} (attempt 3 of {MAX_ATTEMPTS})" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "retrying"}, {"retrying"}),
        ({"status__exact": "failed"}, {"failed"}),
        ({"status__exact": "flagged"}, {"flagged"}),
        ({"status__exact": "processed"}, {"processed"}),
        ({"platform__exact": "woocommerce"}, {"woocommerce"}),
        ({"topic__exact": "order.updated"}, {"woocommerce"}),
    ],
)
def test_the_inbox_filters_by_status_platform_and_topic(client, query, expected):
    deliveries = {
        "failed": failed_delivery(),
        "retrying": failed_delivery(status=D.RETRYING, next_attempt_at=timezone.now()),
        "flagged": delivery(status=D.FLAGGED, notes=["unknown topic"]),
        "processed": delivery(status=D.PROCESSED),
        "woocommerce": delivery(platform="woocommerce", topic="order.updated", status=D.SKIPPED),
    }
    viewer(client)

    response = client.get(changelist_url(**query))

    assert listed(response) == {deliveries[name].pk for name in expected}


def test_the_inbox_filters_by_store(client):
    kept, other = delivery(), delivery()
    viewer(client)

    response = client.get(changelist_url(store__id__exact=kept.store_id))

    assert listed(response) == {kept.pk}
    assert other.pk not in listed(response)


def test_the_inbox_is_searched_by_idempotency_key_and_by_order_number(client):
    order = OrderFactory(number="#7781")
    by_key = delivery(idempotency_key="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    by_order = delivery(store=order.store, order=order, status=D.PROCESSED)
    delivery()
    viewer(client)

    assert listed(client.get(changelist_url(q="b54557e4-bdd9"))) == {by_key.pk}
    assert listed(client.get(changelist_url(q="%237781"))) == {by_order.pk}


def test_the_inbox_list_loads_in_as_many_queries_for_many_deliveries_as_for_one(client):
    viewer(client)
    failed_delivery(order=OrderFactory())
    with CaptureQueriesContext(connection) as one:
        client.get(changelist_url())
    for _ in range(5):
        failed_delivery(order=OrderFactory())

    with CaptureQueriesContext(connection) as six:
        client.get(changelist_url())

    assert len(six) == len(one)


def test_the_inbox_is_hidden_from_users_without_the_view_permission(client):
    item = delivery()
    client.force_login(UserFactory())

    responses = [client.get(changelist_url()), client.get(change_url(item))]

    assert [response.status_code for response in responses] == [403, 403]


# --- the detail page -------------------------------------------------------------------------
def test_the_delivery_page_shows_a_json_body_indented(client):
    item = delivery()
    viewer(client)

    page = client.get(change_url(item)).content.decode()

    assert '<pre class="delivery-body"' in page
    assert escape('"name": "#1042"') in page
    assert escape('"note": "Livrer après 18h"') in page
    assert "\n  " in page.split('class="delivery-body"', 1)[1].split("</pre>", 1)[0]


def test_the_delivery_page_shows_a_body_that_is_not_utf8_with_replacement_characters(client):
    item = delivery(body=b"order=\xff\xfe&total=249")
    viewer(client)

    page = client.get(change_url(item)).content.decode()

    assert escape("order=\ufffd\ufffd&total=249") in page


def test_the_delivery_page_shows_headers_notes_error_and_the_stack_trace(client):
    item = failed_delivery(notes=["phone 0600 kept raw: not a valid number"])
    viewer(client)

    page = client.get(change_url(item)).content.decode()

    assert "X-Shopify-Shop-Domain" in page
    assert "phone 0600 kept raw: not a valid number" in page
    assert '<pre class="delivery-trace"' in page
    assert "Traceback (most recent call last):" in page
    assert escape("KeyError: 'id'") in page


def test_the_delivery_page_links_to_its_order(client):
    order = OrderFactory(number="#1042")
    item = delivery(store=order.store, order=order, status=D.PROCESSED)
    viewer(client)

    page = client.get(change_url(item)).content.decode()

    assert f'<a href="{reverse("admin:orders_order_change", args=[order.pk])}">#1042</a>' in page


def test_the_delivery_page_has_no_editable_field(client):
    item = delivery()
    viewer(client)

    response = client.get(change_url(item))

    assert response.status_code == 200
    assert not response.context["adminform"].form.fields


# --- nothing is added, changed or deleted ----------------------------------------------------
def test_deliveries_cannot_be_added_changed_or_deleted_even_by_a_superuser(client):
    item = delivery(status=D.PROCESSED)
    client.force_login(UserFactory(is_superuser=True))

    add = client.get(reverse("admin:orders_storedelivery_add"))
    change = client.post(change_url(item), {"topic": "orders/cancelled", "status": "failed"})
    delete = client.post(reverse("admin:orders_storedelivery_delete", args=[item.pk]), {"post": "yes"})
    bulk_delete = client.post(
        changelist_url(), {"action": "delete_selected", "_selected_action": [item.pk], "post": "yes"}
    )

    item.refresh_from_db()
    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert bulk_delete.status_code in (200, 302)
    assert StoreDelivery.objects.filter(pk=item.pk).exists()
    assert (item.topic, item.status) == ("orders/create", D.PROCESSED)


def test_the_inbox_offers_no_delete_action(client):
    delivery()
    client.force_login(UserFactory(is_superuser=True))

    page = client.get(changelist_url()).content.decode()

    assert "delete_selected" not in page


# --- retry -----------------------------------------------------------------------------------
def test_the_retry_action_processes_a_failed_delivery_again(client, django_capture_on_commit_callbacks):
    item = failed_delivery()
    retrier(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist_url(), {"action": "retry_deliveries", "_selected_action": [item.pk]}, follow=True
        )

    item.refresh_from_db()
    assert item.attempts == 2
    assert item.status == D.FLAGGED  # the body is still not JSON
    assert item.processed_at is not None
    assert f"Queued again: #{item.pk}." in flashed(response)


def test_the_retry_action_reports_deliveries_that_are_not_failed_or_flagged_as_skipped(
    client, django_capture_on_commit_callbacks
):
    failed = failed_delivery()
    processed = delivery(status=D.PROCESSED, attempts=1)
    retrier(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist_url(),
            {"action": "retry_deliveries", "_selected_action": [failed.pk, processed.pk]},
            follow=True,
        )

    processed.refresh_from_db()
    assert (processed.status, processed.attempts) == (D.PROCESSED, 1)
    assert f"Skipped, not failed, flagged or retrying: #{processed.pk} (processed)." in flashed(response)
    assert f"Queued again: #{failed.pk}." in flashed(response)


def test_the_retry_action_is_not_offered_without_the_permission(client):
    failed_delivery()
    viewer(client)

    page = client.get(changelist_url()).content.decode()

    assert "retry_deliveries" not in page


def test_the_retry_action_posted_without_the_permission_retries_nothing(
    client, django_capture_on_commit_callbacks
):
    item = failed_delivery()
    viewer(client)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(changelist_url(), {"action": "retry_deliveries", "_selected_action": [item.pk]})

    item.refresh_from_db()
    assert (item.status, item.attempts) == (D.FAILED, 1)
    assert callbacks == []


def test_the_retry_button_processes_a_flagged_delivery_again(client, django_capture_on_commit_callbacks):
    item = failed_delivery(status=D.FLAGGED, error="", error_trace="", notes=["the body is not JSON"])
    retrier(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url(item))

    item.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == change_url(item)
    assert (item.status, item.attempts) == (D.FLAGGED, 2)


@pytest.mark.parametrize("status", [D.FAILED, D.RETRYING, D.FLAGGED])
def test_the_retry_button_is_on_the_page_of_a_delivery_that_failed_or_was_flagged(client, status):
    item = failed_delivery(status=status)
    retrier(client)

    page = client.get(change_url(item)).content.decode()

    assert f'action="{retry_url(item)}"' in page


@pytest.mark.parametrize("status", [D.PROCESSED, D.SKIPPED, D.RECEIVED])
def test_the_retry_button_is_not_on_the_page_of_a_delivery_that_did_not_fail(client, status):
    item = delivery(status=status)
    retrier(client)

    page = client.get(change_url(item)).content.decode()

    assert retry_url(item) not in page


def test_the_retry_button_is_not_shown_without_the_permission(client):
    item = failed_delivery()
    viewer(client)

    page = client.get(change_url(item)).content.decode()

    assert retry_url(item) not in page


def test_retrying_without_the_permission_is_forbidden(client, django_capture_on_commit_callbacks):
    item = failed_delivery()
    viewer(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url(item))

    item.refresh_from_db()
    assert response.status_code == 403
    assert (item.status, item.attempts) == (D.FAILED, 1)


def test_a_get_on_the_retry_url_retries_nothing(client, django_capture_on_commit_callbacks):
    item = failed_delivery()
    retrier(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(retry_url(item))

    item.refresh_from_db()
    assert response.status_code == 405
    assert (item.status, item.attempts) == (D.FAILED, 1)


def test_retrying_a_processed_delivery_from_its_page_is_reported_as_skipped(client):
    item = delivery(status=D.PROCESSED, attempts=1)
    retrier(client)

    response = client.post(retry_url(item), follow=True)

    item.refresh_from_db()
    assert (item.status, item.attempts) == (D.PROCESSED, 1)
    assert f"Skipped, not failed, flagged or retrying: #{item.pk} (processed)." in flashed(response)
