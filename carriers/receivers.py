"""Carriers' side of orders' signals: a shipment a store reported becomes a Shipment row."""

from django.dispatch import receiver

from carriers.services import shipment_record
from carriers.services.shipments import reported_carrier_account
from orders.signals import shipment_reported


@receiver(shipment_reported, dispatch_uid="carriers.record_reported_shipment")
def record_reported_shipment(sender, order, shipment, source, **kwargs):
    shipment_record(
        order,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        tracking_url=shipment.tracking_url,
        status=shipment.status,
        source=source,
        external_id=shipment.external_id,
        account=reported_carrier_account(order.store_id, shipment.carrier),
    )
