"""Parcels at a carrier through its adapter: create, reconcile, cancel, label, track.

Calls to the carrier never run inside a database transaction. The shipment row is written
*before* the create call with ``create_status = unknown``: if the call times out, returns
garbage or the process dies during it, the row says so and ``shipment_reconcile`` looks the
parcel up by our reference (``carrier_reference``) instead of sending it again.
"""

import logging
from urllib.parse import quote

from django.db import transaction
from django.utils import timezone

from carriers.adapters import (
    CarrierError,
    ErrorKind,
    ParcelRequest,
    TrackingUpdate,
    adapter_class,
    merge_pdfs,
)
from carriers.models import CarrierAccount, Shipment, TrackingEvent
from carriers.services.accounts import carrier_account_adapter
from carriers.services.polling import regular_interval
from carriers.services.tracking import RecordResult, tracking_updates_record
from orders.models import Order

logger = logging.getLogger(__name__)


def parcel_request_for(order: Order, account: CarrierAccount, *, city: str = "") -> ParcelRequest:
    """What the carrier is asked to carry for ``order`` (``city``: the carrier's id when matched)."""
    items = list(order.items.all())
    return ParcelRequest(
        reference=order.number,
        recipient_name=order.customer.name,
        phone=order.customer.phone or order.customer.phone_raw,
        address=order.shipping_address,
        city=city or order.shipping_city,
        cod_amount=order.cod_amount,
        currency=order.currency,
        description=", ".join(f"{item.quantity} × {item.title}" for item in items)[:200],
        quantity=sum(item.quantity for item in items) or 1,
        options=dict(account.default_options),
        pickup_address=dict(account.pickup_address),
    )


def shipment_create(order: Order, account: CarrierAccount, *, city: str = "", batch=None) -> Shipment:
    """The order's parcel at ``account``'s carrier: created once, never sent twice.

    An order already created there answers its shipment; one whose create is unknown is
    reconciled (looked up by our reference) instead of being sent again. ``batch``: the dispatch
    batch a new shipment is created for.
    """
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=order.pk)  # one create at a time per order
        shipment = (
            Shipment.objects.filter(order=order, account=account)
            .exclude(create_status__in=[Shipment.CreateStatus.CANCELLED, Shipment.CreateStatus.FAILED])
            .first()
        )
        if shipment is None:
            shipment = Shipment.objects.create(
                order=order,
                account=account,
                carrier=account.carrier,
                carrier_reference=order.number,
                cod_amount=order.cod_amount,
                create_status=Shipment.CreateStatus.UNKNOWN,
                source="carrier",
                batch=batch,
            )
            fresh = True
        else:
            fresh = False
    if not fresh:
        if shipment.create_status == Shipment.CreateStatus.UNKNOWN:
            return shipment_reconcile(shipment)
        return shipment

    request = parcel_request_for(order, account, city=city)
    try:
        created = carrier_account_adapter(account).create_parcel(request)
    except CarrierError as error:
        if error.kind == ErrorKind.UNKNOWN:
            logger.warning("parcel create unknown shipment_id=%s carrier=%s", shipment.pk, account.carrier)
            _shipment_set(shipment, create_error=str(error)[:300])
            return shipment
        _shipment_set(shipment, create_status=Shipment.CreateStatus.FAILED, create_error=str(error)[:300])
        return shipment
    except Exception as exc:  # no readable answer: the parcel may exist, reconcile it later
        logger.warning(
            "parcel create unknown shipment_id=%s carrier=%s error=%s", shipment.pk, account.carrier, exc
        )
        _shipment_set(shipment, create_error=f"{type(exc).__name__}"[:300])
        return shipment
    return _shipment_created(shipment, created)


def shipment_reconcile(shipment: Shipment) -> Shipment:
    """A create whose outcome is unknown, settled by asking the carrier for our reference."""
    if shipment.create_status != Shipment.CreateStatus.UNKNOWN:
        return shipment
    try:
        found = carrier_account_adapter(shipment.account).find_parcel(shipment.carrier_reference)
    except CarrierError as error:
        _shipment_set(shipment, create_error=str(error)[:300])
        return shipment  # still unknown: try again later
    if found is None:
        # The carrier has no parcel under our reference: nothing was created, it may be sent again.
        _shipment_set(
            shipment, create_status=Shipment.CreateStatus.FAILED, create_error="not found at the carrier"
        )
        return shipment
    return _shipment_created(shipment, found)


def shipment_cancel(shipment: Shipment) -> Shipment:
    """Cancel the parcel at the carrier; the shipment is voided once the carrier agreed."""
    carrier_account_adapter(shipment.account).cancel_parcel(shipment.tracking_number)
    _shipment_set(shipment, create_status=Shipment.CreateStatus.CANCELLED)
    return shipment


def shipments_label_pdf(shipments: list[Shipment]) -> bytes:
    """The parcels' labels in one PDF: one call per carrier account, merged in the given order."""
    by_account: dict[int, list[Shipment]] = {}
    for shipment in shipments:
        by_account.setdefault(shipment.account_id, []).append(shipment)
    parts = [
        carrier_account_adapter(group[0].account).label_pdf([shipment.tracking_number for shipment in group])
        for group in by_account.values()
    ]
    return merge_pdfs(parts)


def shipments_track(account: CarrierAccount, shipments: list[Shipment]) -> RecordResult:
    """Ask the carrier about these parcels (in its batch size) and record what it says."""
    adapter = carrier_account_adapter(account)
    numbers = [shipment.tracking_number for shipment in shipments if shipment.tracking_number]
    updates: list[TrackingUpdate] = []
    for start in range(0, len(numbers), adapter.track_batch_size):
        updates += adapter.track(numbers[start : start + adapter.track_batch_size])
    Shipment.objects.filter(pk__in=[shipment.pk for shipment in shipments]).update(
        last_polled_at=timezone.now()
    )
    return tracking_updates_record(account, updates, TrackingEvent.Source.POLL)


def shipment_tracking_url(account: CarrierAccount, tracking_number: str) -> str:
    """The customer's tracking link for a parcel: the account's page, else the carrier's public one
    (``tracking_url_template`` on the adapter), else none (the shipped message then says less)."""
    template = account.tracking_url_template or getattr(
        adapter_class(account.carrier), "tracking_url_template", ""
    )
    if not template or "{number}" not in template:
        return ""
    return template.replace("{number}", quote(tracking_number, safe=""))[:500]


def _shipment_created(shipment: Shipment, created) -> Shipment:
    fields = {
        "create_status": Shipment.CreateStatus.CREATED,
        "create_error": "",
        "tracking_number": created.tracking_number,
        "label_url": created.label_url,
        "tracking_url": shipment_tracking_url(shipment.account, created.tracking_number),
        # From now on the poll sweep asks about it (at a carrier that pushes: as a safety net).
        "next_poll_at": timezone.now() + regular_interval(shipment.carrier),
    }
    if created.fee is not None:
        fields["fee"] = created.fee
    _shipment_set(shipment, **fields)
    logger.info("parcel created shipment_id=%s carrier=%s", shipment.pk, shipment.carrier)
    return shipment


def _shipment_set(shipment: Shipment, **fields) -> None:
    for name, value in fields.items():
        setattr(shipment, name, value)
    shipment.save(update_fields=[*fields, "updated_at"])
