"""factory-boy factories. Orders in a given status are walked there through the real service."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from carriers.models import CarrierAccount, Shipment
from carriers.services import carrier_account_create
from messaging.models import ChannelProvider, MessagingSettings
from messaging.services.routing import channel_providers_choose_sandbox
from orders.models import Customer, Order, OrderEvent, OrderItem, Store
from orders.services import order_transition
from orders.transitions import OrderStatus, PaymentMethod, shortest_path


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")
    platform = Store.Platform.SHOPIFY
    currency = "MAD"
    default_phone_region = "MA"

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        for user in extracted or ():
            self.members.add(user)

    @factory.post_generation
    def providers(self, create, extracted, **kwargs):
        """The sandbox on every channel, chosen as a store chooses any provider; a test that is
        about providers passes ``providers=False`` and chooses its own."""
        if create and extracted is not False:
            channel_providers_choose_sandbox(self)


def messaging_at_any_hour(store) -> MessagingSettings:
    """``store`` sends whatever the hour: no quiet hours. For tests that watch messages go out
    while the clock is real (a worker, a live server), which would otherwise fail in the evening."""
    settings, _ = MessagingSettings.objects.update_or_create(
        store=store, defaults={"quiet_hours_start": None, "quiet_hours_end": None}
    )
    return settings


def channel_provider_set(*, store, channel, **fields) -> ChannelProvider:
    """``store`` sends ``channel`` through the provider ``fields`` name, instead of the sandbox
    StoreFactory chose for it."""
    provider, _ = ChannelProvider.objects.update_or_create(store=store, channel=channel, defaults=fields)
    return provider


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    store = factory.SubFactory(StoreFactory)
    name = factory.Faker("name", locale="fr_FR")
    phone_raw = factory.Sequence(lambda n: f"06{10000000 + n:08d}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    language = Customer.Language.FRENCH


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        skip_postgeneration_save = True

    store = factory.SubFactory(StoreFactory)
    customer = factory.SubFactory(CustomerFactory, store=factory.SelfAttribute("..store"))
    external_id = factory.Sequence(lambda n: str(5_000_000 + n))
    number = factory.Sequence(lambda n: f"#{1001 + n}")
    payment_method = PaymentMethod.COD
    currency = factory.SelfAttribute("store.currency")
    total_amount = Decimal("249.00")
    cod_amount = factory.LazyAttribute(
        lambda o: o.total_amount if o.payment_method == PaymentMethod.COD else Decimal("0")
    )
    shipping_address = "12 Rue Ibn Battouta"
    shipping_city = "Casablanca"
    placed_at = factory.LazyFunction(timezone.now)
    # Messages name the items, so an order comes with one unless a test says otherwise.
    item = factory.RelatedFactory(
        "tests.factories.OrderItemFactory",
        factory_related_name="order",
        unit_price=factory.SelfAttribute("..total_amount"),
    )


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    title = "Caftan brodé"
    quantity = 1
    unit_price = Decimal("249.00")


def grant(user, *perms: str):
    """Give ``user`` permissions by their dotted names ("orders.view_store"); returns the user."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"agent{n}")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        for name in extracted or ():
            self.groups.add(Group.objects.get(name=name))

    @factory.post_generation
    def stores(self, create, extracted, **kwargs):
        """The stores the user is a member of: what they see in admin and the API."""
        for store in extracted or ():
            store.members.add(self)


def order_in_status(status: str, **order_kwargs) -> Order:
    """An order created at ``placed`` and moved to ``status`` through ``order_transition``."""
    order = OrderFactory(**order_kwargs)
    for name in shortest_path(status, order.payment_method):
        order_transition(order, name, source=OrderEvent.Source.SYSTEM)
    order.refresh_from_db()
    return order


def without_queued_messages(order: Order) -> Order:
    """``order`` with the messages its walk left queued (never kicked: no commit ran) removed, so
    that the next drain of the outbox sends only what the test itself triggers."""
    order.messages.filter(status="queued").delete()
    return order


class CarrierAccountFactory(factory.django.DjangoModelFactory):
    """An account at the sandbox carrier (its webhook secret under LIVRA_SBX_WEBHOOK_SECRET)."""

    class Meta:
        model = CarrierAccount

    store = factory.SubFactory(StoreFactory)
    carrier = "sandbox"
    name = factory.Sequence(lambda n: f"Sandbox {n}")
    env_prefix = "LIVRA_SBX"
    pickup_address = factory.LazyFunction(lambda: {"address": "Zone industrielle", "city": "Casablanca"})

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        account = carrier_account_create(**kwargs)
        # Carrier tests watch the customer told as parcels move, at any hour of the real clock;
        # quiet hours are messaging's tests' business.
        messaging_at_any_hour(account.store)
        return account


class ShipmentFactory(factory.django.DjangoModelFactory):
    """A parcel created at the account's carrier for a confirmed COD order."""

    class Meta:
        model = Shipment

    order = factory.LazyAttribute(lambda o: order_in_status(OrderStatus.CONFIRMED, store=o.account.store))
    account = factory.SubFactory(CarrierAccountFactory)
    carrier = factory.SelfAttribute("account.carrier")
    tracking_number = factory.Sequence(lambda n: f"SBX{n:010d}")
    carrier_reference = factory.LazyAttribute(lambda o: o.order.number)
    cod_amount = factory.LazyAttribute(lambda o: o.order.cod_amount)
    fee = Decimal("25.00")
    create_status = Shipment.CreateStatus.CREATED
    source = "carrier"
