"""What the API reads in (``*Input``, validated, turned into the services' arguments) and writes out."""

from decimal import Decimal

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.models import Channel, Consent, Message
from orders.api.selectors import customer_list_for_user, order_messages, store_list_for_user
from orders.models import Customer, Order, OrderEvent, OrderItem, Store
from orders.platforms import ConsentClaim, IncomingCustomer, IncomingItem, IncomingOrder
from orders.selectors import order_available_transitions
from orders.supported_times import time_refusal
from orders.transitions import TRANSITIONS, OrderStatus, PaymentMethod

MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0")}


class SupportedDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time Livra takes (orders.supported_times), checked as sent: DRF converts it to
    the server's zone next, which would hide an offset no zone has."""

    def enforce_timezone(self, value):
        if refusal := time_refusal(value):
            raise serializers.ValidationError(refusal, code="out_of_range")
        return super().enforce_timezone(value)


def _user(serializer_or_field):
    return serializer_or_field.context["request"].user


class YourStoreField(serializers.SlugRelatedField):
    """A store of the requesting user's, by slug; any other slug does not exist."""

    def get_queryset(self):
        return store_list_for_user(_user(self))

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")  # PostgreSQL refuses NUL in a query: no slug has one
        return super().to_internal_value(data)


class YourCustomerField(serializers.PrimaryKeyRelatedField):
    """A customer of one of the requesting user's stores, by id; any other id does not exist."""

    def get_queryset(self):
        return customer_list_for_user(_user(self))


# --- In: create or update an order ---------------------------------------------------------------
class ConsentClaimInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    subscribed = serializers.BooleanField(help_text="Did the customer opt in to marketing on this channel?")


class CustomerInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    phone = serializers.CharField(
        max_length=40,
        allow_blank=True,
        default="",
        help_text="As typed; read with the store's phone region. An unreadable number is kept as given.",
    )
    email = serializers.EmailField(max_length=254, allow_blank=True, default="")
    language = serializers.ChoiceField(choices=Customer.Language.choices, allow_blank=True, default="")
    consents = ConsentClaimInputSerializer(
        many=True,
        default=list,
        max_length=len(Channel.choices),
        help_text="What checkout said about marketing messages, per channel",
    )

    def validate_consents(self, consents: list[dict]) -> list[dict]:
        channels = [claim["channel"] for claim in consents]
        if len(set(channels)) != len(channels):
            raise serializers.ValidationError("Give each channel at most once.")
        return consents

    def validate(self, attrs: dict) -> dict:
        # Customers are found by phone, then e-mail: without either, every update would make a new one.
        if not attrs["phone"].strip() and not attrs["email"]:
            raise serializers.ValidationError({"phone": "Give the customer's phone or e-mail (or both)."})
        return attrs


class OrderItemInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    unit_price = serializers.DecimalField(**MONEY)
    sku = serializers.CharField(max_length=100, allow_blank=True, default="")


class OrderUpsertInputSerializer(serializers.Serializer):
    """An order as the store has it. The same ``store`` + ``external_id`` again updates the order,
    unless ``updated_at`` is not newer than the last update applied."""

    store = YourStoreField(
        slug_field="slug",
        queryset=Store.objects.none(),  # for the schema: get_queryset() is the user's stores
        error_messages={"does_not_exist": "You have no store “{value}”."},
        help_text="The store's slug",
    )
    external_id = serializers.CharField(max_length=100, help_text="The order's id in the store")
    number = serializers.CharField(max_length=50, help_text="What the customer sees, e.g. #1042")
    payment_method = serializers.ChoiceField(choices=PaymentMethod.choices)
    paid = serializers.BooleanField(
        default=False,
        help_text="Prepaid orders: the money is taken, so a new order is accepted at once. "
        "Ignored for cash on delivery.",
    )
    currency = serializers.CharField(
        min_length=3,
        max_length=3,
        required=False,
        validators=[RegexValidator(r"^[A-Z]{3}\Z", "An ISO 4217 code in capitals, e.g. MAD.")],
        help_text="ISO 4217; the store's currency if left out",
    )
    total_amount = serializers.DecimalField(**MONEY)
    cod_amount = serializers.DecimalField(
        **MONEY,
        required=False,
        help_text="Cash the courier collects; for cash on delivery the total if left out, for prepaid 0",
    )
    placed_at = SupportedDateTimeField()
    updated_at = SupportedDateTimeField(
        required=False,
        allow_null=True,
        help_text="The store's last change: an update not newer than the last one applied changes nothing",
    )
    customer = CustomerInputSerializer()
    items = OrderItemInputSerializer(many=True, default=list, max_length=500)
    shipping_address = serializers.CharField(max_length=1000, allow_blank=True, default="")
    shipping_city = serializers.CharField(max_length=100, allow_blank=True, default="")
    notes = serializers.CharField(max_length=5000, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=100), default=list, max_length=50)

    def validate(self, attrs: dict) -> dict:
        cod = attrs["payment_method"] == PaymentMethod.COD
        total = attrs["total_amount"]
        cod_amount = attrs.setdefault("cod_amount", total if cod else Decimal("0"))
        if cod and cod_amount > total:
            raise serializers.ValidationError(
                {"cod_amount": f"The amount to collect ({cod_amount}) is more than the total ({total})."}
            )
        if not cod and cod_amount:
            raise serializers.ValidationError(
                {"cod_amount": "A prepaid order has nothing to collect: leave cod_amount out or 0."}
            )
        return attrs

    def incoming_order(self) -> IncomingOrder:
        """The validated order in the terms every store platform's adapter uses."""
        data = self.validated_data
        customer = data["customer"]
        return IncomingOrder(
            external_id=data["external_id"],
            number=data["number"],
            payment_method=data["payment_method"],
            paid=data["paid"],
            currency=data.get("currency", ""),
            total_amount=data["total_amount"],
            cod_amount=data["cod_amount"],
            customer=IncomingCustomer(
                name=customer["name"],
                phone=customer["phone"],
                email=customer["email"],
                language=customer["language"],
                consents=tuple(
                    ConsentClaim(
                        channel=claim["channel"],
                        subscribed=claim["subscribed"],
                        field="api",
                        value=str(claim["subscribed"]).lower(),
                    )
                    for claim in customer["consents"]
                ),
            ),
            placed_at=data["placed_at"],
            updated_at=data.get("updated_at"),
            items=tuple(IncomingItem(**item) for item in data["items"]),
            shipping_address=data["shipping_address"],
            shipping_city=data["shipping_city"],
            notes=data["notes"],
            tags=tuple(data["tags"]),
        )


# --- In: a transition, a consent -------------------------------------------------------------------
class OrderTransitionInputSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=[spec.name for spec in TRANSITIONS], help_text="The transition")
    reason = serializers.CharField(max_length=2000, allow_blank=True, default="")
    expected_status = serializers.ChoiceField(
        choices=OrderStatus.choices,
        required=False,
        help_text="The status you saw: if the order has moved on since, nothing happens (409)",
    )
    carrier = serializers.CharField(
        max_length=100, allow_blank=True, default="", help_text="`ship` only: who carries the parcel"
    )
    tracking_number = serializers.CharField(
        max_length=100, allow_blank=True, default="", help_text="`ship` only: the parcel's tracking number"
    )
    tracking_url = serializers.URLField(
        max_length=500,
        allow_blank=True,
        default="",
        help_text="`ship` only: where the customer follows the parcel (sent in the shipped message)",
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["name"] != "ship":
            given = [name for name in ("carrier", "tracking_number", "tracking_url") if attrs[name]]
            if given:
                raise serializers.ValidationError({name: "Only for the `ship` transition." for name in given})
        return attrs


class ConsentRecordInputSerializer(serializers.Serializer):
    customer = YourCustomerField(
        queryset=Customer.objects.none(),  # for the schema: get_queryset() is the user's customers
        error_messages={"does_not_exist": "You have no customer {pk_value}."},
    )
    channel = serializers.ChoiceField(choices=Channel.choices)
    status = serializers.ChoiceField(choices=Consent.Status.choices)
    marketing = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Marketing too? Left out: an opt-in keeps what marketing consent there was; "
        "an opt-out ends it.",
    )
    note = serializers.CharField(
        max_length=500, allow_blank=True, default="", help_text="How the customer said it, for the evidence"
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["status"] == Consent.Status.OPTED_OUT and attrs["marketing"]:
            raise serializers.ValidationError({"marketing": "An opt-out stops marketing too."})
        return attrs


# --- Out -------------------------------------------------------------------------------------------
class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = ["customer", "channel", "status", "marketing", "source", "recorded_at"]


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "phone", "phone_raw", "email", "language"]
        extra_kwargs = {"phone": {"help_text": "E.164; empty when the number as given cannot be read"}}


class CustomerDetailSerializer(CustomerSerializer):
    consents = ConsentSerializer(many=True, read_only=True)

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "consents"]


class OrderItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["sku", "title", "quantity", "unit_price"]


class OrderEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The user who did it; null for stores, carriers and jobs",
    )

    class Meta:
        model = OrderEvent
        fields = [
            "id",
            "type",
            "transition",
            "from_status",
            "to_status",
            "status_version",
            "source",
            "reason",
            "actor",
            "created_at",
        ]


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "order",
            "event",
            "channel",
            "status",
            "provider",
            "error_code",
            "created_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
        ]


class OrderSerializer(serializers.ModelSerializer):
    store = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer = CustomerSerializer(read_only=True)
    items = OrderItemSerializer(many=True, read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "store",
            "external_id",
            "number",
            "status",
            "status_version",
            "status_changed_at",
            "payment_method",
            "currency",
            "total_amount",
            "cod_amount",
            "customer",
            "items",
            "shipping_address",
            "shipping_city",
            "notes",
            "tags",
            "placed_at",
            "external_updated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    customer = CustomerDetailSerializer(read_only=True)
    timeline = OrderEventSerializer(source="events", many=True, read_only=True)
    messages = serializers.SerializerMethodField()
    available_transitions = serializers.SerializerMethodField(
        help_text="The transitions you may apply now (POST …/transitions/)"
    )

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "available_transitions", "timeline", "messages"]
        read_only_fields = fields

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, order: Order) -> list[dict]:
        return MessageSerializer(order_messages(order), many=True).data

    def get_available_transitions(self, order: Order) -> list[str]:
        return order_available_transitions(order, _user(self))


# --- Errors (for the schema) -----------------------------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class TransitionConflictSerializer(ErrorSerializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, help_text="The order's status now")
    available_transitions = serializers.ListField(
        child=serializers.CharField(), help_text="The transitions you may apply now"
    )
