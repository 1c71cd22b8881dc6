"""The sandbox phone's replies when Livra's web server is down or failing: a real worker posts them
to LIVRA_PUBLIC_URL, tries again with backoff, and each one arrives once Livra takes it.

Counted at the fake standing where LIVRA_PUBLIC_URL points (requests received), not in logs.
"""

import json
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_celery_results.models import TaskResult

from messaging.models import MessagingSettings
from messaging.sandbox_views import PENDING_SESSION_KEY
from orders.transitions import OrderStatus
from tests.celery_worker import WorkerProcess, broker_client, forget_queue, publish_for_real_to, wait_for
from tests.factories import StoreFactory, UserFactory, order_in_status
from tests.fakes.server import FakeResponse, FakeServer
from tests.faults.services import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


class Livra(FakeServer):
    """Stands where LIVRA_PUBLIC_URL points: answers the statuses it is given, in turn, then 200."""

    def __init__(self, port: int, *statuses: int):
        super().__init__(port)
        self.statuses = list(statuses)

    def handle(self, request):
        return FakeResponse(self.statuses.pop(0) if self.statuses else 200, "")


@pytest.fixture(scope="module")
def worker(django_db_setup, tmp_path_factory):
    """A worker whose LIVRA_PUBLIC_URL is a port nothing listens on until a test says so."""
    port = free_port()
    queue = f"livra-sandbox-{uuid.uuid4().hex[:8]}"
    process = WorkerProcess(
        queue,
        tmp_path_factory.mktemp("sandbox") / "worker.log",
        env={"LIVRA_PUBLIC_URL": f"http://127.0.0.1:{port}"},
    )
    process.start()
    yield process, port
    process.stop()
    forget_queue(broker_client(), queue)


@pytest.fixture
def reply_as_customer(client):
    """Post a typed reply from the phone page, published to ``worker``'s queue; its ids."""
    store = StoreFactory()
    MessagingSettings.objects.create(store=store, quiet_hours_start=None, quiet_hours_end=None)
    order = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=store)  # request sent, inline
    user = UserFactory(stores=[store])
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="messaging", codename="view_message")
    )
    client.force_login(user)

    def reply(queue: str) -> tuple[str, str]:
        with publish_for_real_to(queue):
            response = client.post(
                reverse("messaging:sandbox-phone-reply", args=[order.customer.pk]),
                {"text": "oui", "channel": "whatsapp"},
            )
        assert response.status_code == 202
        [entry] = client.session[PENDING_SESSION_KEY]
        return entry["id"], entry["task"]

    return reply


def task_state(task_id: str) -> str:
    result = TaskResult.objects.filter(task_id=task_id).first()
    return result.status if result else "PENDING"


def test_a_reply_posted_while_livra_is_down_arrives_once_when_it_is_back(worker, reply_as_customer):
    process, port = worker
    process.mark()

    reply_id, task_id = reply_as_customer(process.queue)
    # Nothing listens: the worker's first post is refused and it says it will try again.
    wait_for(lambda: task_state(task_id) == "RETRY", timeout=20, what="the reply task to retry")
    with Livra(port) as livra:
        wait_for(lambda: task_state(task_id) == "SUCCESS", timeout=30, what="the reply to be taken")

    [posted] = livra.requests
    assert posted.path.startswith("/webhooks/messaging/sandbox/") and posted.path.endswith("/inbound/")
    assert json.loads(posted.body)["id"] == reply_id


def test_a_reply_livra_answers_with_5xx_is_posted_again_until_it_is_taken(worker, reply_as_customer):
    process, port = worker
    process.mark()

    with Livra(port, 503, 500) as livra:
        _, task_id = reply_as_customer(process.queue)
        wait_for(lambda: task_state(task_id) == "SUCCESS", timeout=30, what="the reply to be taken")

    assert len(livra.requests) == 3
    assert len({request.body for request in livra.requests}) == 1  # the same reply each time
