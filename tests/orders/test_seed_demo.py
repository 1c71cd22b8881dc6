"""manage.py seed_demo: the quick start's demo store, built through order_transition."""

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

from messaging.models import ChannelProvider, Message
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


def test_every_order_got_to_its_status_through_order_transition(seeded):
    for order in Order.objects.prefetch_related("events"):
        events = [event for event in order.events.all() if not event.type.startswith("automation_")]
        # One event per status change (besides what the store's rules did on each), chained from
        # placed to the current status.
        assert len(events) == order.status_version
        chain = [OrderStatus.PLACED] + [event.to_status for event in events]
        assert [event.from_status for event in events] == chain[:-1]
        assert chain[-1] == order.status
        assert all(event.source in OrderEvent.Source.values for event in events)
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
    assert first.customers() == second.customers()
    assert first.orders(46) == second.orders(46)


def test_the_demo_store_chooses_the_sandbox_on_every_channel(seeded):
    chosen = dict(ChannelProvider.objects.filter(store__slug="atlas-souk").values_list("channel", "provider"))

    assert chosen == {"whatsapp": "sandbox", "sms": "sandbox", "email": "sandbox"}
