"""Read-only queries about carriers: COD remittance per shipment and per carrier account.

Expected cash is a delivered COD shipment's collected amount (else its COD amount); remitted is
the sum of its matched statement lines (duplicates never counted). Everything is computed in the
database, one query per list, whatever the number of shipments.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from carriers.models import (
    CarrierAccount,
    RemittanceLine,
    RemittanceStatus,
    Shipment,
    TrackingState,
)

T = TrackingState
MONEY = DecimalField(max_digits=14, decimal_places=2)
ZERO = Value(Decimal("0.00"), output_field=MONEY)
# Shipped and neither delivered nor on its way back: its cash is still to come.
IN_TRANSIT_STATES = (
    T.PICKED_UP,
    T.IN_TRANSIT,
    T.OUT_FOR_DELIVERY,
    T.DELIVERY_FAILED,
    T.AVAILABLE_FOR_PICKUP,
    T.ON_HOLD,
)
HAS_COD = Q(cod_amount__gt=0) | Q(cod_collected_amount__gt=0)
DELIVERED_COD = Q(state=T.DELIVERED) & HAS_COD
DEFAULT_OVERDUE_DAYS = 14


def remittance_overdue_days() -> int:
    return int(getattr(settings, "LIVRA_REMITTANCE_OVERDUE_DAYS", DEFAULT_OVERDUE_DAYS))


def shipment_expected_cod(shipment: Shipment) -> Decimal:
    """The cash a shipment should bring (the Python twin of ``_expected()``)."""
    if shipment.state != T.DELIVERED:
        return Decimal("0.00")
    amount = (
        shipment.cod_collected_amount if shipment.cod_collected_amount is not None else shipment.cod_amount
    )
    return amount if amount and amount > 0 else Decimal("0.00")


def _expected():
    return Case(
        When(DELIVERED_COD, then=Coalesce("cod_collected_amount", "cod_amount", ZERO)),
        default=ZERO,
        output_field=MONEY,
    )


def _sum(queryset: QuerySet, group: str, field: str):
    """Σ ``field`` over ``queryset`` (already filtered on an OuterRef), as a correlated subquery."""
    total = queryset.order_by().values(group).annotate(total=Sum(field)).values("total")[:1]
    return Coalesce(Subquery(total, output_field=MONEY), ZERO, output_field=MONEY)


def _matched_lines(**lookups) -> QuerySet:
    return RemittanceLine.objects.filter(result=RemittanceLine.Result.MATCHED, **lookups)


def shipments_with_remittance(queryset: QuerySet[Shipment]) -> QuerySet[Shipment]:
    """``queryset`` with ``expected``, ``remitted``, ``remitted_fee``, ``difference`` (remitted −
    expected), ``remitted_on`` (last payout date) and ``remittance_status`` (a RemittanceStatus,
    or "" when nothing is expected nor remitted)."""
    lines = _matched_lines(shipment=OuterRef("pk"))
    last_payout = lines.order_by(F("payout_date").desc(nulls_last=True)).values("payout_date")[:1]
    return queryset.annotate(
        expected=_expected(),
        remitted=_sum(lines, "shipment", "collected_amount"),
        remitted_fee=_sum(lines, "shipment", "fee"),
        has_remittance=Exists(lines),
        remitted_on=Subquery(last_payout),
    ).annotate(
        difference=F("remitted") - F("expected"),
        remittance_status=Case(
            When(Q(expected__gt=0, has_remittance=False), then=Value(RemittanceStatus.MISSING)),
            When(remitted__lt=F("expected"), then=Value(RemittanceStatus.SHORT)),
            When(remitted__gt=F("expected"), then=Value(RemittanceStatus.OVER)),
            When(Q(expected__gt=0), then=Value(RemittanceStatus.REMITTED)),
            default=Value(""),
        ),
    )


def shipment_remittance(shipment: Shipment) -> Shipment:
    """One shipment with its remittance figures (see ``shipments_with_remittance``)."""
    return shipments_with_remittance(Shipment.objects.filter(pk=shipment.pk)).get()


def _delivered_at():
    return Coalesce("cod_collected_at", "last_event_at")


def shipment_list_remittance_overdue(
    accounts: QuerySet[CarrierAccount], days: int | None = None, now=None
) -> QuerySet[Shipment]:
    """Delivered COD shipments of ``accounts`` that no statement line remitted, delivered more than
    ``days`` days ago (default: settings.LIVRA_REMITTANCE_OVERDUE_DAYS), oldest first."""
    days = remittance_overdue_days() if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return (
        shipments_with_remittance(Shipment.objects.filter(DELIVERED_COD, account__in=accounts))
        .annotate(delivered_at=_delivered_at())
        .filter(has_remittance=False, delivered_at__lt=cutoff)
        .select_related("order", "account")
        .order_by("delivered_at", "pk")
    )


def shipment_list_remittance_mismatched(accounts: QuerySet[CarrierAccount]) -> QuerySet[Shipment]:
    """Shipments of ``accounts`` whose statements remitted less or more than expected."""
    return (
        shipments_with_remittance(Shipment.objects.filter(account__in=accounts))
        .filter(has_remittance=True, remittance_status__in=[RemittanceStatus.SHORT, RemittanceStatus.OVER])
        .select_related("order", "account")
        .order_by("account", "pk")
    )


def carrier_account_remittance_totals(accounts: QuerySet[CarrierAccount]) -> QuerySet[CarrierAccount]:
    """``accounts`` with their COD money, in one query: ``collected`` (delivered, cash collected),
    ``in_transit`` (shipped, not yet delivered nor returning: COD amount), ``remitted`` (matched
    statement lines), ``pending`` (collected − remitted) and ``lost`` (lost parcels' COD amount)."""
    shipments = Shipment.objects.filter(account=OuterRef("pk"))
    delivered = shipments.filter(DELIVERED_COD).annotate(expected=_expected())
    return (
        accounts.annotate(
            collected=_sum(delivered, "account", "expected"),
            in_transit=_sum(
                shipments.filter(state__in=IN_TRANSIT_STATES, cod_amount__gt=0), "account", "cod_amount"
            ),
            remitted=_sum(_matched_lines(account=OuterRef("pk")), "account", "collected_amount"),
            lost=_sum(shipments.filter(state=T.LOST, cod_amount__gt=0), "account", "cod_amount"),
        )
        .annotate(pending=F("collected") - F("remitted"))
        .select_related("store")
        .order_by("store__name", "name")
    )
