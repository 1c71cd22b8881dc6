"""Carrier adapters: one small interface, registered by name (like messaging's providers).

The shape follows Karrio's connector split (see ../shared/reference/carriers.md §2), kept small:
each carrier module holds its HTTP calls, its request building and response parsing, its error
table (the carrier's answers → ``ErrorKind``) and its default status table (raw code → normalised
``State`` and ``Reason``). Credentials come from environment variables under the account's
prefix (``CarrierAccount.env_prefix``); nothing here stores or logs them.

A carrier answer Livra cannot read is never guessed: a create that timed out raises
``CarrierError(UNKNOWN)`` (the parcel may exist: reconcile with ``find_parcel`` by our
reference, never re-send blindly), and an unknown raw status is returned as it is, for the
tracking service to keep, flag and wait for a mapping.
"""

import importlib
import io
import os
import pkgutil
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Protocol

from django.core.exceptions import ImproperlyConfigured
from pypdf import PdfWriter


class State(StrEnum):
    """Where the parcel is (reference §1: Karrio's and AfterShip's states, plus ``returned``)."""

    INFO_RECEIVED = "info_received"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERED = "delivered"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    ON_HOLD = "on_hold"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    LOST = "lost"


class Reason(StrEnum):
    """Why it failed or stalled, apart from where it is."""

    NONE = ""
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    WRONG_ADDRESS = "wrong_address"
    POSTPONED = "postponed"
    CUSTOMER_CANCELLED = "customer_cancelled"
    DAMAGED = "damaged"
    LOST = "lost"
    OTHER = "other"


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"  # try again later (timeouts before sending, 5xx, 429)
    PERMANENT = "permanent"  # this request will never succeed as it is
    INVALID_ADDRESS = "invalid_address"  # the address or the city is not one the carrier serves
    UNKNOWN = "unknown"  # the request went out and no readable answer came back


class CarrierError(Exception):
    def __init__(self, kind: ErrorKind, code: str = "", text: str = "", retry_after: float | None = None):
        super().__init__(f"{kind}: {code} {text}".strip())
        self.kind = ErrorKind(kind)
        self.code = str(code or "")
        self.text = text
        self.retry_after = retry_after


@dataclass(frozen=True)
class ParcelRequest:
    reference: str  # ours, unique per store (the order number): how a lost create is found again
    recipient_name: str
    phone: str  # E.164
    address: str
    city: str  # the carrier's city id or name (CarrierCity.carrier_city_id)
    cod_amount: Decimal  # 0 for prepaid
    currency: str
    description: str = ""  # "2 × Caftan brodé"
    quantity: int = 1
    weight_kg: Decimal | None = None
    declared_value: Decimal | None = None
    options: dict = field(default_factory=dict)  # the account's defaults merged with the order's
    pickup_address: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ParcelCreated:
    tracking_number: str
    label_url: str = ""
    fee: Decimal | None = None
    carrier_reference: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrackingUpdate:
    """One carrier report about one parcel, raw: the tracking service normalises and dedupes it."""

    tracking_number: str
    raw_code: str  # the carrier's status code or label, as sent
    raw_text: str = ""  # its wording / comment / reason
    occurred_at: datetime | None = None  # carrier time
    location: str = ""
    event_id: str = ""  # the carrier's own event id where it has one (else a hash is used)
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class City:
    carrier_city_id: str
    name: str
    zone: str = ""


class CarrierAdapter(Protocol):
    """What every carrier module implements. Constructed as
    ``Adapter(credentials, base_url=None, webhook_secret="", timeout=10.0)`` with the credentials
    its ``credential_names`` list, read from the environment under the account's prefix."""

    name: ClassVar[str]
    label: ClassVar[str]
    # How many tracking numbers one ``track`` call takes, and the carrier's documented pace.
    track_batch_size: ClassVar[int]
    requests_per_second: ClassVar[float]
    supports_webhooks: ClassVar[bool]
    credential_names: ClassVar[tuple[str, ...]]
    # raw code (folded: casefold, no accents, single spaces) → (State, Reason); shipped as the
    # defaults of the account's editable table (carriers.models.StatusMapping).
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]]
    # Optional (the poll sweep and the webhook view read them with defaults):
    # ``track_requests_per_batch`` (1): requests one ``track`` call makes (Sendit: one per parcel);
    # ``burst_per_second`` (none): a short-window limit that spaces a sweep's requests (Yalidine 5/s);
    # ``webhook_path`` (the name): the URL segment; ``webhook_accepts_get`` (False);
    # ``webhook_is_trigger`` (False): the push's proof is weak, poll the parcels it names again;
    # ``tracking_url_template`` (none): the customer's public tracking page, ``{number}`` in it.

    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated: ...

    def find_parcel(self, reference: str) -> ParcelCreated | None: ...

    def cancel_parcel(self, tracking_number: str) -> None: ...

    def label_pdf(self, tracking_numbers: list[str]) -> bytes: ...

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]: ...

    def verify_webhook(self, headers: dict, body: bytes) -> bool: ...

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]: ...

    def cities(self) -> list[City]: ...


def fold(raw: str) -> str:
    """A carrier's raw status as status tables key it: casefolded, accents removed, single spaces
    ("Livré " → "livre"). Exact folded matches only: "livr" must not match "non livré"."""
    decomposed = unicodedata.normalize("NFKD", raw or "")
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.casefold().split())


def merge_pdfs(parts: list[bytes]) -> bytes:
    """Several labels as one PDF (the carrier answered one file per parcel)."""
    if len(parts) == 1:
        return parts[0]
    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    merged = io.BytesIO()
    writer.write(merged)
    return merged.getvalue()


_REGISTRY: dict[str, type] = {}


def register(cls):
    _REGISTRY[cls.name] = cls
    return cls


def load_adapters() -> None:
    """Import every module of this package, so each registers itself (CarriersConfig.ready)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def adapter_names() -> list[str]:
    return sorted(_REGISTRY)


def adapter_class(name: str) -> type:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ImproperlyConfigured(f"no carrier adapter called {name!r}") from None


def webhook_path(cls) -> str:
    """The carrier's segment in Livra's webhook URL: its name, or an alias where the carrier
    refuses URLs naming it (``webhook_path`` on the class: Shiprocket)."""
    return getattr(cls, "webhook_path", cls.name)


def adapter_for_webhook_path(segment: str) -> type | None:
    return next((cls for cls in _REGISTRY.values() if webhook_path(cls) == segment), None)


def credentials_from_env(prefix: str, names: tuple[str, ...]) -> dict[str, str]:
    """``{name: os.environ[PREFIX_NAME]}``: secrets live in the environment only."""
    missing = [f"{prefix}_{name}" for name in names if not os.environ.get(f"{prefix}_{name}")]
    if missing:
        raise ImproperlyConfigured(f"missing environment variables: {', '.join(missing)}")
    return {name: os.environ[f"{prefix}_{name}"] for name in names}
