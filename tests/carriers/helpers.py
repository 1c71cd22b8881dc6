"""What a carrier reports, as tests write it."""

from datetime import datetime, timedelta

from django.utils import timezone

from carriers.adapters import TrackingUpdate
from carriers.services import tracking_updates_record

START = timezone.make_aware(datetime(2026, 11, 20, 9, 0))


def at(hours: float) -> datetime:
    """``hours`` after the parcel's first scan."""
    return START + timedelta(hours=hours)


def report(
    shipment, raw_code: str, hours: float = 0, *, text: str = "", event_id: str = "", source="sandbox"
):
    update = TrackingUpdate(
        tracking_number=shipment.tracking_number,
        raw_code=raw_code,
        raw_text=text,
        occurred_at=at(hours),
        event_id=event_id,
    )
    return tracking_updates_record(shipment.account, [update], source)
