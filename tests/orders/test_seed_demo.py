"""manage.py seed_demo: the quick start's demo store, a fortnight played through Livra's services."""

import itertools
import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import phonenumbers
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from automations.models import QueueEntry, Timer
from messaging.models import Channel, ChannelProvider, InboundMessage, Message, MessageAttempt
from orders.demo import DemoPlanner
from orders.models import Customer, Order, OrderEvent, OrderItem, Store
from orders.transitions import OrderStatus, PaymentMethod

pytestmark = pytest.mark.django_db

PASSWORD_LINE = re.compile(r'^Superuser "admin" created with password: (\S+)$', re.MULTILINE)
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed once for the module (it walks ~250 transitions); every test runs in a savepoint inside."""
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        pytest.MonkeyPatch.context() as env,
        transaction.atomic(),
    ):
        env.delenv("LIVRA_ADMIN_PASSWORD", raising=False)
        yield seed()
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS


def test_one_moroccan_shopify_store_with_about_fifty_orders_in_every_status(seeded):
    store = Store.objects.get()
    assert (store.name, store.slug, store.platform) == ("Atlas Souk", "atlas-souk", "shopify")
    assert (store.currency, store.default_phone_region, str(store.time_zone)) == (
        "MAD",
        "MA",
        "Africa/Casablanca",
    )
    orders = Order.objects.filter(store=store)
    assert 45 <= orders.count() <= 60
    assert 40 <= Customer.objects.filter(store=store).count() <= 60
    assert set(orders.values_list("status", flat=True)) == set(OrderStatus.values)
    assert set(orders.values_list("payment_method", flat=True)) == set(PaymentMethod.values)
    assert orders.filter(payment_method=PaymentMethod.COD).count() > orders.count() * 0.7


def status_changes(order) -> list[OrderEvent]:
    return [event for event in order.events.all() if event.from_status and event.to_status]


def test_every_order_arrived_through_order_create_and_moved_through_order_transition(seeded):
    for order in Order.objects.prefetch_related("events"):
        placed, *_ = order.events.all()
        changes = status_changes(order)
        # It arrived from the store, then one event per status change, chained from placed to the
        # current status.
        assert (placed.type, placed.to_status, placed.source) == ("placed", OrderStatus.PLACED, "store")
        assert len(changes) == order.status_version
        chain = [OrderStatus.PLACED] + [event.to_status for event in changes]
        assert [event.from_status for event in changes] == chain[:-1]
        assert chain[-1] == order.status
        assert all(event.source in OrderEvent.Source.values for event in changes)
    # Messaging heard the customer-facing changes: its outbox rows exist (sent by the worker).
    assert Message.objects.filter(order__store__slug="atlas-souk").count() > 50


def test_history_is_spread_over_the_last_fortnight_and_never_in_the_future(seeded):
    now = timezone.now()
    placed = list(Order.objects.values_list("placed_at", flat=True))
    assert min(placed) > now - timedelta(days=16)
    assert max(placed) - min(placed) > timedelta(days=7)
    for order in Order.objects.prefetch_related("events"):
        times = [order.placed_at] + [event.created_at for event in order.events.all()]
        assert times == sorted(times)
        assert times[-1] < now
    assert not Message.objects.filter(created_at__gt=now).exists()
    assert not InboundMessage.objects.filter(received_at__gt=now).exists()


def test_each_timeline_reads_as_a_real_past_with_the_gaps_people_and_carriers_take(seeded):
    for order in Order.objects.exclude(status=OrderStatus.PLACED).prefetch_related("events"):
        placed, *_ = order.events.all()
        changes = status_changes(order)
        # The store's webhook arrives seconds after the customer placed the order.
        assert timedelta(seconds=1) <= placed.created_at - order.placed_at <= timedelta(minutes=1)
        for before, after in itertools.pairwise([placed, *changes]):
            if after.source == OrderEvent.Source.AUTOMATION:
                # A store's rule moves the order in the same transaction as the change it follows.
                assert after.created_at == before.created_at, order.number
            else:  # people, stores and carriers take minutes to days
                assert after.created_at - before.created_at >= timedelta(minutes=1), order.number
        if order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            confirmed = next(e for e in changes if e.to_status == OrderStatus.CONFIRMED)
            shipped = next(e for e in changes if e.to_status == OrderStatus.SHIPPED)
            assert shipped.created_at - confirmed.created_at >= timedelta(hours=2)


def conversation(customer) -> list[tuple[str, object]]:
    """What the customer's phone shows, in order: each message as it arrives, each reply as sent."""
    steps = [("message", m.sent_at) for m in customer.messages.all() if m.sent_at]
    steps += [("reply", r.received_at) for r in InboundMessage.objects.filter(customer=customer)]
    return sorted(steps, key=lambda step: step[1])


def test_no_two_steps_of_a_customer_conversation_share_the_same_second(seeded):
    for customer in Customer.objects.prefetch_related("messages"):
        seconds = [at.replace(microsecond=0) for _, at in conversation(customer)]
        assert len(seconds) == len(set(seconds)), customer.name
        for message in customer.messages.exclude(status=Message.Status.QUEUED):
            receipts = [message.sent_at, message.delivered_at, message.read_at]
            receipts = [at.replace(microsecond=0) for at in receipts if at is not None]
            assert receipts == sorted(set(receipts)), message.pk  # sent, then delivered, then read


def test_a_confirmation_request_goes_out_seconds_after_the_order_and_the_answer_comes_minutes_later(seeded):
    answered = InboundMessage.objects.filter(intent__in=["confirm", "cancel"]).select_related("order")
    assert answered.count() >= 10
    for reply in answered:
        order = reply.order
        request = order.messages.filter(event="confirmation_requested").order_by("sent_at").first()
        placed = order.events.get(type="placed")
        assert timedelta(seconds=1) <= request.sent_at - placed.created_at <= timedelta(seconds=10)
        assert request.delivered_at - request.sent_at >= timedelta(seconds=1)
        assert reply.received_at - request.sent_at >= timedelta(minutes=5)
        # The customer answered on the channel they were asked on, after reading it there.
        assert reply.channel in {m.channel for m in order.messages.filter(event="confirmation_requested")}
        if reply.channel == Channel.WHATSAPP and reply.in_reply_to is not None:
            assert reply.in_reply_to.read_at < reply.received_at
        answer = order.events.get(from_status=OrderStatus.AWAITING_CONFIRMATION)
        expected = {"confirm": OrderStatus.CONFIRMED, "cancel": OrderStatus.CANCELLED}[reply.intent]
        assert (answer.to_status, answer.payload) == (expected, {"inbound_id": reply.pk})


def test_every_message_of_the_past_went_through_the_sandbox_and_reached_the_customer(seeded):
    live = Order.objects.order_by("-placed_at").first()
    # The live order's and those of the orders sent to the sandbox carrier now wait for the worker.
    past = Message.objects.exclude(order=live).exclude(order__shipments__account__isnull=False)
    # Played up to now: in the store's night the last ones wait for quiet hours to end, as they should.
    past = past.exclude(status="queued", next_attempt_at__gt=timezone.now())
    assert past.count() > 150
    assert set(past.values_list("provider", flat=True)) == {"sandbox"}
    assert set(past.values_list("status", flat=True)) <= {"sent", "delivered", "read"}
    assert (
        past.filter(status="read").exists() and past.filter(channel=Channel.SMS, status="delivered").exists()
    )
    for message in past.prefetch_related("status_changes")[:40]:
        path = [change.to_status for change in message.status_changes.all()]
        assert path[:3] == ["queued", "sending", "sent"], path
        assert MessageAttempt.objects.get(message=message).outcome == MessageAttempt.Outcome.ACCEPTED
    # The store's rules did their part: reminders, a review request after delivery.
    assert past.filter(event="confirmation_requested").count() > past.values("order").distinct().count() / 2
    assert past.filter(event="review_request").exists()


def test_the_newest_order_is_live_and_its_confirmation_request_waits_for_the_worker(seeded):
    now = timezone.now()
    live = Order.objects.order_by("-placed_at").first()
    [request] = live.messages.all()

    assert live.status == OrderStatus.AWAITING_CONFIRMATION
    assert now - live.placed_at < timedelta(minutes=2)
    assert (request.event, request.status) == ("confirmation_requested", Message.Status.QUEUED)
    assert request.next_attempt_at <= now  # due: the worker sends it as soon as it starts
    assert Timer.objects.filter(order=live, state=Timer.State.PENDING, due_at__gt=now).count() >= 2


def test_agents_left_work_in_the_confirmation_queue_and_what_moved_on_closed_by_itself(seeded):
    open_entries = QueueEntry.objects.filter(state=QueueEntry.State.OPEN)
    assert open_entries.exists()
    assert all(entry.order.status == OrderStatus.AWAITING_CONFIRMATION for entry in open_entries)
    # An entry closes by itself once its order has moved on, saying who or what moved it.
    closed = QueueEntry.objects.filter(state=QueueEntry.State.DONE)
    assert closed.exists() and all(entry.close_reason for entry in closed)
    assert OrderEvent.objects.filter(type="queue_entry_closed").count() == closed.count()
    # Questions instead of answers wait in the inbox for an agent.
    assert InboundMessage.objects.filter(intent="other", handled=False).exists()


def test_items_and_amounts_are_in_mad_and_cod_collects_the_total(seeded):
    orders = Order.objects.annotate(item_count=Count("items"))
    assert all(order.item_count >= 1 for order in orders)
    for order in orders:
        items_total = sum((item.line_total for item in OrderItem.objects.filter(order=order)), Decimal(0))
        assert order.currency == "MAD"
        assert order.total_amount == items_total > 0
        if order.payment_method == PaymentMethod.COD:
            assert order.cod_amount == order.total_amount
        else:
            assert order.cod_amount == 0


def test_customers_have_moroccan_mobiles_typed_locally_and_stored_as_e164(seeded):
    customers = list(Customer.objects.all())
    for customer in customers:
        assert re.fullmatch(r"0[67][\d \-]{8,12}", customer.phone_raw), customer.phone_raw
        assert re.fullmatch(r"\+212[67]\d{8}", customer.phone), customer.phone
        assert phonenumbers.is_valid_number(phonenumbers.parse(customer.phone))
        assert phonenumbers.region_code_for_number(phonenumbers.parse(customer.phone)) == "MA"
    assert {customer.language for customer in customers} == {"fr", "ar", "en"}
    assert len({order.shipping_city for order in Order.objects.all()}) >= 8


def test_running_it_again_creates_nothing(seeded):
    counts = [model.objects.count() for model in (Store, Customer, Order, OrderItem, OrderEvent, Message)]
    users = get_user_model().objects.count()

    output = seed()

    assert "already exists" in output
    assert [model.objects.count() for model in (Store, Customer, Order, OrderItem, OrderEvent, Message)] == (
        counts
    )
    assert get_user_model().objects.count() == users


def test_admin_password_is_generated_and_printed_once(seeded, monkeypatch):
    monkeypatch.delenv("LIVRA_ADMIN_PASSWORD", raising=False)
    password = PASSWORD_LINE.search(seeded).group(1)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)
    assert password not in seed()


def test_admin_password_comes_from_the_environment_when_set(seeded, monkeypatch):
    get_user_model().objects.filter(username="admin").delete()
    monkeypatch.setenv("LIVRA_ADMIN_PASSWORD", "atlas-souk-demo-pass")

    output = seed()

    assert get_user_model().objects.get(username="admin").check_password("atlas-souk-demo-pass")
    assert "atlas-souk-demo-pass" not in output
    assert PASSWORD_LINE.search(output) is None


def test_an_existing_admin_keeps_its_password(seeded, monkeypatch):
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("chosen-by-hand")
    admin.save()
    monkeypatch.setenv("LIVRA_ADMIN_PASSWORD", "something-else")

    seed()

    assert get_user_model().objects.get(username="admin").check_password("chosen-by-hand")


def test_the_plan_is_deterministic():
    now = timezone.now()
    first, second = DemoPlanner(now), DemoPlanner(now)
    customers = first.customers()
    assert customers == second.customers()
    assert first.orders(customers) == second.orders(customers)


def test_the_demo_store_chooses_the_sandbox_on_every_channel(seeded):
    chosen = dict(ChannelProvider.objects.filter(store__slug="atlas-souk").values_list("channel", "provider"))

    assert chosen == {"whatsapp": "sandbox", "sms": "sandbox", "email": "sandbox"}
