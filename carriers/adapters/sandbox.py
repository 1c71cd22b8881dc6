"""The sandbox carrier: the whole adapter interface, without network.

For the demo and tests. Its parcels are kept in Livra's own database (``SandboxParcel``, tracking
numbers ``SBX…``, and ``SandboxParcelEvent``), so that the web, the worker and beat, separate
processes, see the same ones; the adapter does that database I/O where a real one calls its
carrier (so, like those calls, keep it out of callers' transactions). ``record_event`` adds what
the carrier reports next, which ``track`` then returns; ``carriers.services.sandbox_walk`` walks
parcels through their life and posts those events to Livra's carrier webhook, signed like a real
carrier's: hex HMAC-SHA256 of the body with the account's webhook secret, in the header
``X-Sandbox-Carrier-Signature``.

The sandbox needs to know whose parcels it keeps: ``carrier_account_adapter`` hands it the
account (``binds_account``). One built without an account (tests) can still track, cancel,
label and record events by tracking number, but not create or find parcels.
"""

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from carriers.adapters import (
    CarrierError,
    City,
    ErrorKind,
    ParcelCreated,
    ParcelRequest,
    Reason,
    State,
    TrackingUpdate,
    fold,
    merge_pdfs,
    register,
)
from carriers.models import CarrierAccount, SandboxParcel, SandboxParcelEvent, SandboxWalkSettings

SIGNATURE_HEADER = "X-Sandbox-Carrier-Signature"

# The sandbox's raw codes (as it sends them) → normalised state and reason.
RAW_STATUSES: dict[str, tuple[State, Reason]] = {
    "CREATED": (State.INFO_RECEIVED, Reason.NONE),
    "PICKED_UP": (State.PICKED_UP, Reason.NONE),
    "IN_TRANSIT": (State.IN_TRANSIT, Reason.NONE),
    "AT_HUB": (State.IN_TRANSIT, Reason.NONE),
    "ON_HOLD": (State.ON_HOLD, Reason.OTHER),
    "OUT_FOR_DELIVERY": (State.OUT_FOR_DELIVERY, Reason.NONE),
    "AT_RELAY_POINT": (State.AVAILABLE_FOR_PICKUP, Reason.NONE),
    "UNREACHABLE": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
    "REFUSED": (State.DELIVERY_FAILED, Reason.REFUSED),
    "POSTPONED": (State.DELIVERY_FAILED, Reason.POSTPONED),
    "WRONG_ADDRESS": (State.DELIVERY_FAILED, Reason.WRONG_ADDRESS),
    "DELIVERED": (State.DELIVERED, Reason.NONE),
    "RETURNING": (State.RETURNING, Reason.NONE),
    "RETURNED": (State.RETURNED, Reason.NONE),
    "CANCELLED": (State.CANCELLED, Reason.CUSTOMER_CANCELLED),
    "LOST": (State.LOST, Reason.LOST),
}

CITIES = (
    ("1", "Casablanca", "Casablanca-Settat"),
    ("2", "Rabat", "Rabat-Salé-Kénitra"),
    ("3", "Marrakech", "Marrakech-Safi"),
    ("4", "Fès", "Fès-Meknès"),
    ("5", "Tanger", "Tanger-Tétouan-Al Hoceïma"),
    ("6", "Agadir", "Souss-Massa"),
    ("7", "Meknès", "Fès-Meknès"),
    ("8", "Oujda", "Oriental"),
)


def minimal_pdf(lines: list[str]) -> bytes:
    """A small valid one-page PDF showing ``lines`` (ASCII), hand-written: no PDF library needed."""
    safe = str.maketrans({"\\": "/", "(": "[", ")": "]"})
    text = " ".join(
        f"({line.encode('ascii', 'replace').decode().translate(safe)}) Tj 0 -18 Td" for line in lines
    )
    stream = f"BT /F1 12 Tf 20 260 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 283 283] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register
class SandboxCarrier:
    name: ClassVar[str] = "sandbox"
    label: ClassVar[str] = "Sandbox"
    track_batch_size: ClassVar[int] = 100
    requests_per_second: ClassVar[float] = 100.0
    supports_webhooks: ClassVar[bool] = True
    # No public page: a reserved example domain, as the demo's other carriers use.
    tracking_url_template: ClassVar[str] = "https://tracking.example.com/sandbox/{number}"
    credential_names: ClassVar[tuple[str, ...]] = ()
    binds_account: ClassVar[bool] = True  # carrier_account_adapter passes ``account``
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = {
        fold(raw): value for raw, value in RAW_STATUSES.items()
    }
    fee: ClassVar[Decimal] = Decimal("25.00")

    def __init__(
        self,
        credentials: dict | None = None,
        base_url=None,
        webhook_secret: str = "",
        timeout=10.0,
        account: CarrierAccount | None = None,
    ):
        self.credentials = credentials or {}
        self.webhook_secret = webhook_secret
        self.account = account

    # --- parcels ---------------------------------------------------------------------------
    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        if not parcel.city.strip() or not parcel.address.strip():
            raise CarrierError(ErrorKind.INVALID_ADDRESS, "address", "the address and the city are required")
        existing = self.find_parcel(parcel.reference)
        if existing is not None:
            return existing  # our reference is unique: a repeated create answers the same parcel
        try:
            with transaction.atomic():
                entry = SandboxParcel.objects.create(
                    account=self._account(),
                    tracking_number=f"SBX{secrets.randbelow(10**10):010d}",
                    reference=parcel.reference,
                    request=parcel_request_json(parcel),
                    next_step_at=timezone.now() + sandbox_step(self._account()),
                )
                self._record(entry, "CREATED", "Parcel registered")
        except IntegrityError:
            existing = self.find_parcel(parcel.reference)  # created meanwhile by another call
            if existing is None:
                raise
            return existing
        return self._created(entry)

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        entry = SandboxParcel.objects.filter(account=self._account(), reference=reference).first()
        return self._created(entry) if entry is not None else None

    def cancel_parcel(self, tracking_number: str) -> None:
        with transaction.atomic():
            entry = self._entry(tracking_number, lock=True)
            codes = set(entry.events.values_list("raw_code", flat=True))
            if codes - {"CREATED", "CANCELLED"}:
                raise CarrierError(
                    ErrorKind.PERMANENT, "picked_up", "the parcel has left: it cannot be cancelled"
                )
            if not entry.cancelled:
                entry.cancelled, entry.next_step_at = True, None
                entry.save(update_fields=["cancelled", "next_step_at"])
                self._record(entry, "CANCELLED", "Cancelled by the sender")

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        """A page per parcel, as label printers want them."""
        pages = []
        for tracking_number in tracking_numbers:
            request = self._entry(tracking_number).request
            cod = f"COD {request.get('cod_amount')} {request.get('currency')}"
            pages.append(
                minimal_pdf(["Livra sandbox carrier", tracking_number, f"{request.get('reference')} {cod}"])
            )
        return merge_pdfs(pages)

    # --- tracking --------------------------------------------------------------------------
    def record_event(
        self,
        tracking_number: str,
        raw_code: str,
        raw_text: str = "",
        occurred_at: datetime | None = None,
        location: str = "",
    ) -> TrackingUpdate:
        """What the sandbox carrier reports next about a parcel (the walk and tests call it)."""
        with transaction.atomic():
            entry = self._entry(tracking_number, lock=True)  # one sequence number at a time
            return update_of(self._record(entry, raw_code, raw_text, occurred_at, location), entry)

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        events = SandboxParcelEvent.objects.filter(
            parcel__tracking_number__in=tracking_numbers
        ).select_related("parcel")
        by_number: dict[str, list[TrackingUpdate]] = {}
        for event in events.order_by("parcel_id", "sequence"):
            by_number.setdefault(event.parcel.tracking_number, []).append(update_of(event, event.parcel))
        return [update for number in tracking_numbers for update in by_number.get(number, [])]

    def webhook_body(self, updates: list[TrackingUpdate]) -> bytes:
        """The body the sandbox posts to Livra's carrier webhook for ``updates``."""
        events = [
            {
                "event_id": update.event_id,
                "tracking_number": update.tracking_number,
                "status": update.raw_code,
                "text": update.raw_text,
                "location": update.location,
                "occurred_at": update.occurred_at.isoformat() if update.occurred_at else None,
            }
            for update in updates
        ]
        return json.dumps({"events": events}).encode()

    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        given = {key.lower(): value for key, value in headers.items()}.get(SIGNATURE_HEADER.lower(), "")
        if not self.webhook_secret or not given:
            return False
        return hmac.compare_digest(given, sign(self.webhook_secret, body))

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        try:
            events = json.loads(body)["events"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CarrierError(ErrorKind.PERMANENT, "body", "not a sandbox carrier webhook") from exc
        return [
            TrackingUpdate(
                tracking_number=str(event["tracking_number"]),
                raw_code=str(event["status"]),
                raw_text=str(event.get("text") or ""),
                occurred_at=parse_datetime(event["occurred_at"]) if event.get("occurred_at") else None,
                location=str(event.get("location") or ""),
                event_id=str(event.get("event_id") or ""),
                raw=event,
            )
            for event in events
        ]

    def cities(self) -> list[City]:
        return [City(carrier_city_id=id_, name=name, zone=zone) for id_, name, zone in CITIES]

    # --- helpers ---------------------------------------------------------------------------
    def _account(self) -> CarrierAccount:
        if self.account is None:
            raise CarrierError(ErrorKind.PERMANENT, "account", "a sandbox carrier built without its account")
        return self.account

    def _entry(self, tracking_number: str, *, lock: bool = False) -> SandboxParcel:
        parcels = SandboxParcel.objects.select_for_update() if lock else SandboxParcel.objects
        entry = parcels.filter(tracking_number=tracking_number).first()
        if entry is None:
            raise CarrierError(ErrorKind.PERMANENT, "not_found", f"no parcel {tracking_number}")
        return entry

    def _record(
        self,
        entry: SandboxParcel,
        raw_code: str,
        raw_text: str = "",
        occurred_at: datetime | None = None,
        location: str = "",
    ) -> SandboxParcelEvent:
        last = entry.events.order_by("-sequence").values_list("sequence", flat=True).first() or 0
        return SandboxParcelEvent.objects.create(
            parcel=entry,
            sequence=last + 1,
            raw_code=raw_code,
            raw_text=raw_text[:200],
            location=location[:200],
            occurred_at=occurred_at or timezone.now(),
        )

    def _created(self, entry: SandboxParcel) -> ParcelCreated:
        return ParcelCreated(
            tracking_number=entry.tracking_number,
            label_url="",
            fee=self.fee,
            carrier_reference=entry.reference,
        )


def update_of(event: SandboxParcelEvent, parcel: SandboxParcel) -> TrackingUpdate:
    """A recorded sandbox event as the carrier reports it."""
    return TrackingUpdate(
        tracking_number=parcel.tracking_number,
        raw_code=event.raw_code,
        raw_text=event.raw_text,
        occurred_at=event.occurred_at,
        location=event.location,
        event_id=f"{parcel.tracking_number}-{event.sequence}",
    )


def parcel_request_json(parcel: ParcelRequest) -> dict:
    """The request as the sandbox keeps it (amounts as strings: JSON has no decimals)."""
    return json.loads(json.dumps(asdict(parcel), default=str))


def sandbox_step(account: CarrierAccount) -> timedelta:
    """How long a parcel of ``account`` stays at each step (its walk settings, else the defaults)."""
    settings = SandboxWalkSettings.objects.filter(account=account).first() or SandboxWalkSettings()
    return timedelta(minutes=settings.minutes_between_steps)
