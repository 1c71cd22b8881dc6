"""Query filters of the API's lists (django-filter). A bad value is a 400 naming the filter."""

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from messaging.models import Channel, Message
from orders.api.selectors import phone_regions_for_user
from orders.models import Order
from orders.phones import normalize_phone
from orders.supported_times import time_refusal
from orders.transitions import OrderStatus, PaymentMethod

BIGINT_MAX = 2**63 - 1


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time that PostgreSQL can compare with (orders.supported_times)."""

    def clean(self, value):
        cleaned = super().clean(value)
        if cleaned is not None and (refusal := time_refusal(cleaned)):
            raise forms.ValidationError(refusal, code="out_of_range")
        return cleaned


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": BIGINT_MAX})
class IdFilter(django_filters.NumberFilter):
    """An object id: a whole number (``NumberFilter`` alone would take ``1.5``) that fits the
    column; a larger one would overflow the database driver on a foreign key lookup."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=BIGINT_MAX, **kwargs)


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=OrderStatus.choices, help_text="One or more statuses: `?status=placed&status=confirmed`"
    )
    payment_method = django_filters.ChoiceFilter(choices=PaymentMethod.choices)
    created_after = BoundedIsoDateTimeFilter(
        field_name="placed_at", lookup_expr="gte", help_text="Placed at or after this time (ISO 8601)"
    )
    created_before = BoundedIsoDateTimeFilter(
        field_name="placed_at", lookup_expr="lt", help_text="Placed before this time (ISO 8601)"
    )
    phone = django_filters.CharFilter(
        method="filter_phone",
        max_length=40,
        help_text="The customer's phone: local (`0612345678`, read with the store's region) or E.164, "
        "or part of the number as typed",
    )
    store = django_filters.CharFilter(field_name="store__slug", max_length=50, help_text="The store's slug")

    class Meta:
        model = Order
        fields = ["status", "payment_method", "created_after", "created_before", "phone", "store"]

    def filter_phone(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        regions = phone_regions_for_user(self.request.user) if self.request else []
        numbers = {normalize_phone(value, region) for region in [*regions, ""]} - {None}
        return queryset.filter(
            Q(customer__phone__in=numbers)
            | Q(customer__phone__contains=value)
            | Q(customer__phone_raw__icontains=value)
        )


class MessageFilter(django_filters.FilterSet):
    order = IdFilter(field_name="order_id", help_text="The order's id")
    status = django_filters.MultipleChoiceFilter(choices=Message.Status.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)

    class Meta:
        model = Message
        fields = ["order", "status", "channel"]
