"""Shipments: what stores and carriers report about parcels."""

from carriers.models import Shipment


def shipment_record(
    order,
    *,
    carrier: str,
    tracking_number: str,
    tracking_url: str,
    status: str,
    source: str,
    external_id: str = "",
) -> Shipment:
    """Create or update the order's shipment with this tracking number (or this external id).

    Reported values are kept as given; a status Livra cannot map is kept here too.
    """
    existing = Shipment.objects.select_for_update().filter(order=order)
    shipment = None
    if tracking_number:
        shipment = existing.filter(tracking_number=tracking_number).first()
    if shipment is None and external_id:
        shipment = existing.filter(external_id=external_id).first()
    shipment = shipment or Shipment(order=order, source=source)
    for name, value in (
        ("carrier", carrier),
        ("tracking_number", tracking_number),
        ("tracking_url", tracking_url),
        ("reported_status", status),
        ("external_id", external_id),
    ):
        if value:
            setattr(shipment, name, value[: Shipment._meta.get_field(name).max_length])
    shipment.save()
    return shipment
