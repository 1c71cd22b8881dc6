"""Shipments: what stores, agents and carriers report about parcels."""

from carriers.adapters import fold
from carriers.models import CarrierAccount, Shipment
from carriers.services.accounts import carrier_label


def shipment_record(
    order,
    *,
    carrier: str,
    tracking_number: str,
    tracking_url: str,
    status: str,
    source: str,
    external_id: str = "",
    account: CarrierAccount | None = None,
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
    if account is not None and shipment.account_id is None:
        shipment.account = account
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


def reported_carrier_account(store_id: int, carrier: str) -> CarrierAccount | None:
    """The store's enabled carrier account a reported carrier name means (its name, its adapter's
    name or label, case and accents aside), when exactly one does: its tracking then reaches it."""
    wanted = fold(carrier)
    if not wanted:
        return None
    matches = [
        account
        for account in CarrierAccount.objects.filter(store_id=store_id, enabled=True)
        if wanted in {fold(account.name), fold(account.carrier), fold(carrier_label(account.carrier))}
    ]
    return matches[0] if len(matches) == 1 else None


def carrier_account_suggestions(store_id: int) -> list[str]:
    """What to offer as carrier names for a store's order: its enabled accounts' carriers."""
    accounts = CarrierAccount.objects.filter(store_id=store_id, enabled=True)
    return sorted({carrier_label(account.carrier) for account in accounts})
