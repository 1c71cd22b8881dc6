"""Raw carrier statuses → normalised state and reason, as editable data."""

import logging

from django.db import transaction
from django.db.models import Q

from carriers.adapters import adapter_class, fold
from carriers.models import CarrierAccount, StatusMapping, TrackingEvent

logger = logging.getLogger(__name__)


def status_mappings_sync(carrier: str) -> int:
    """Insert the adapter's default rows the table does not have yet; edited rows are left alone.

    Idempotent: run at account creation and by ``manage.py carrier_status_mappings_sync``.
    Returns how many rows were added.
    """
    defaults = adapter_class(carrier).default_status_map
    have = set(StatusMapping.objects.filter(carrier=carrier, account=None).values_list("raw_code", flat=True))
    rows = [
        StatusMapping(
            carrier=carrier, raw_code=fold(raw), state=state.value, reason=reason.value, is_default=True
        )
        for raw, (state, reason) in defaults.items()
        if fold(raw) not in have
    ]
    StatusMapping.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def status_mapping_for(carrier: str, account: CarrierAccount | None, raw_code: str) -> StatusMapping | None:
    """The account's own row for this raw code, else the carrier's; None when unmapped."""
    folded = fold(raw_code)
    condition = Q(account=None)
    if account is not None:
        condition |= Q(account=account)
    rows = StatusMapping.objects.filter(condition, carrier=carrier, raw_code=folded)
    return min(rows, key=lambda row: row.account_id is None, default=None)


def status_mappings_for(
    carrier: str, account: CarrierAccount | None, raw_codes: set[str]
) -> dict[str, StatusMapping]:
    """``status_mapping_for`` for several raw codes in one query: folded raw code → its row."""
    condition = Q(account=None)
    if account is not None:
        condition |= Q(account=account)
    found: dict[str, StatusMapping] = {}
    rows = StatusMapping.objects.filter(
        condition, carrier=carrier, raw_code__in={fold(raw) for raw in raw_codes}
    )
    # The account's own rows last, so they overwrite the carrier's defaults.
    for row in sorted(rows, key=lambda row: row.account_id is not None):
        found[row.raw_code] = row
    return found


def status_mapping_set(
    carrier: str, raw_code: str, state: str, reason: str = "", *, account: CarrierAccount | None = None
) -> tuple[StatusMapping, int]:
    """Map ``raw_code`` and apply the events that waited for it, oldest carrier time first.

    Returns the mapping and how many waiting events were re-applied.
    """
    from carriers.services.tracking import tracking_event_apply

    folded = fold(raw_code)
    with transaction.atomic():
        mapping, _ = StatusMapping.objects.update_or_create(
            carrier=carrier, account=account, raw_code=folded, defaults={"state": state, "reason": reason}
        )
    waiting = TrackingEvent.objects.filter(carrier=carrier, raw_code_folded=folded, mapped=False)
    if account is not None:
        waiting = waiting.filter(shipment__account=account)
    count = 0
    for event_id in waiting.order_by("occurred_at", "id").values_list("id", flat=True):
        tracking_event_apply(event_id, remap=True)
        count += 1
    logger.info(
        "carrier status mapped carrier=%s raw=%s state=%s reapplied=%s", carrier, folded, state, count
    )
    return mapping, count
