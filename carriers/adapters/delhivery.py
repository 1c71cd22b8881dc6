"""Delhivery (India), B2C express API.

Auth: ``Authorization: Token <API_TOKEN>`` on every call (credential ``API_TOKEN``).
Base URL ``https://track.delhivery.com`` (staging: ``https://staging-express.delhivery.com``).
Endpoints used (reference §3; ``niteshBhardwaj/DakiyaCourierServer``
``src/external/delhivery/delhivery.constant.ts``; ``api-evangelist/delhivery``):

- create: ``POST /api/cmu/create.json``, form-encoded ``format=json&data=<json>`` where the JSON is
  ``{"shipments": [{name, add, pin, city, state, country, phone, order, payment_mode (COD or
  Prepaid), cod_amount, total_amount, products_desc, quantity, weight (grams)…}],
  "pickup_location": {"name": <the warehouse name registered at Delhivery>}}``. It answers errors
  inside HTTP 200: ``success: false`` with ``rmk``, and per package ``status: "Fail"``,
  ``remarks[]``, ``serviceable``; read as errors here (an unserviceable PIN → INVALID_ADDRESS).
  Shipments above ₹50,000 need an e-waybill (not handled: such a create is refused by Delhivery).
- find by reference: ``GET /api/v1/packages/json/?ref_ids=<our order id>``.
- cancel: ``POST /api/p/edit {"waybill": ..., "cancellation": "true"}`` (JSON).
- label: ``GET /api/p/packing_slip?wbns=a,b&pdf=true`` → per package ``pdf_download_link``,
  fetched WITHOUT our token (a storage URL); several labels are merged into one PDF
  (``carriers.adapters.merge_pdfs``).
- track: ``GET /api/v1/packages/json/?waybill=a,b`` (``track_batch_size`` = 50). Each scan in
  ``Shipment.Scans[].ScanDetail`` becomes one update; the current ``Shipment.Status`` is used when
  there are no scans.
- cities: ``GET /c/api/pin-codes/json/?filter_codes=`` (every serviceable PIN code):
  ``carrier_city_id`` = the PIN code, ``name`` = its city (or district), ``zone`` = state code.
  ``ParcelRequest.city`` is therefore the PIN code; ``options["city_name"]`` and
  ``options["state"]`` give the names (or put the PIN in ``options["pincode"]`` and the name in
  ``city``). Other options: ``pickup_location`` (warehouse name), ``shipping_mode``
  (Surface/Express), ``seller_name``.

Raw status: Delhivery reports ``StatusType`` × ``Status`` and both are needed: ``DL`` ends a
delivery (``DL``/``Delivered``) AND a return (``DL``/``RTO``, i.e. back at the seller), and ``RT``
marks the return leg (https://delhivery-express-api-doc.readme.io/reference/package-lifecycle-1).
The raw code stored is ``"<StatusType>/<Status>"``: "UD/In Transit", "DL/Delivered", "DL/RTO".
The NSL code (``StatusCode``/``NSLCode``) and the instructions go to ``raw_text``/``raw``: a failed
attempt shows as "UD/Pending" with an NSL code saying why; it is mapped to ``on_hold`` by default
(Pending also means "reached the destination, not yet out"), for an operator to refine.

Push: Delhivery sets the webhook up itself on request (5–6 working days; answer 200) and posts one
``{"Shipment": {"AWB", "ReferenceNo", "NSLCode", "Status": {Status, StatusType, StatusDateTime,
StatusLocation, Instructions}}}`` per scan
(https://delhivery-express-api-doc.readme.io/reference/tracking-via-push-api-webhook-1).
UNVERIFIED: how Delhivery authenticates a push. Livra asks Delhivery to send a shared token in the
``X-Livra-Webhook-Token`` header (our choice, agreed when the push is set up) and compares it in
constant time; a token is a weak proof, so a push is a trigger to re-poll as well.

VERIFIED from vendor pages cited above: the Token header, the base URL, the create endpoint and
its ``format=json&data=`` body, the package lifecycle (StatusType × Status), the push set-up.
UNVERIFIED (third-party code or our assumption): the exact answer shapes (create's ``packages[]``
and ``rmk``, ``ref_ids`` lookup, the cancel answer, packing slip's ``pdf_download_link``, the
pin-code list), the error wording matched for address errors, the auth error (401/403), the
push auth header, "CN"/"LT" status types, and rate limits: none published found; 50 waybills per
tracking call is the documented batch, ``requests_per_second`` = 2 is our conservative choice and
a 429 is honoured with its ``Retry-After``. Times are India time (UTC+05:30).
"""

import hmac
import json
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import ClassVar

import requests

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
from carriers.adapters.http_answers import header_value, request_never_sent, retry_after_seconds

logger = logging.getLogger(__name__)

BASE_URL = "https://track.delhivery.com"
IST = timezone(timedelta(hours=5, minutes=30))
WEBHOOK_HEADER = "X-Livra-Webhook-Token"
_ADDRESS_WORDS = ("pincode", "pin code", "serviceable", "non-serviceable", "address", "city")

_DEFAULT_STATUSES: dict[str, tuple[State, Reason]] = {
    # Forward leg: UD (undelivered yet) … DL Delivered.
    "UD/Manifested": (State.INFO_RECEIVED, Reason.NONE),
    "UD/Not Picked": (State.INFO_RECEIVED, Reason.NONE),
    "UD/In Transit": (State.IN_TRANSIT, Reason.NONE),
    "UD/Pending": (State.ON_HOLD, Reason.NONE),  # at the destination, or a failed attempt (NSL code)
    "UD/Dispatched": (State.OUT_FOR_DELIVERY, Reason.NONE),
    "DL/Delivered": (State.DELIVERED, Reason.NONE),
    # Return leg: RT … DL RTO (back at the seller).
    "RT/In Transit": (State.RETURNING, Reason.NONE),
    "RT/Pending": (State.RETURNING, Reason.NONE),
    "RT/Dispatched": (State.RETURNING, Reason.NONE),
    "DL/RTO": (State.RETURNED, Reason.NONE),
    # UNVERIFIED spellings (harmless if never sent).
    "CN/Canceled": (State.CANCELLED, Reason.NONE),
    "CN/Cancelled": (State.CANCELLED, Reason.NONE),
    "CN/Closed": (State.CANCELLED, Reason.NONE),
    "LT/Lost": (State.LOST, Reason.LOST),
}


def raw_code(status_type: str, status: str) -> str:
    """Delhivery's two fields as one raw code: "DL/RTO" is a return, "DL/Delivered" a delivery."""
    return f"{(status_type or '').strip().upper()}/{(status or '').strip()}"


def _ist(value) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=IST)


def _national_phone(phone: str) -> str:
    digits = "".join(char for char in phone if char.isdigit())
    return digits[-10:] if len(digits) > 10 else digits


def _is_address(text: str) -> bool:
    return any(word in text.lower() for word in _ADDRESS_WORDS)


def _text(body) -> str:
    if isinstance(body, dict):
        for key in ("rmk", "remark", "error", "detail", "message", "Error"):
            if body.get(key):
                value = body[key]
                return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ""


@register
class DelhiveryAdapter:
    name: ClassVar[str] = "delhivery"
    label: ClassVar[str] = "Delhivery"
    track_batch_size: ClassVar[int] = 50
    requests_per_second: ClassVar[float] = 2.0
    supports_webhooks: ClassVar[bool] = True
    # The public tracking page customers are sent to (UNVERIFIED: as the carrier's site shows it).
    tracking_url_template: ClassVar[str] = "https://www.delhivery.com/track/package/{number}"
    credential_names: ClassVar[tuple[str, ...]] = ("API_TOKEN",)
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = {
        fold(code): value for code, value in _DEFAULT_STATUSES.items()
    }

    def __init__(
        self,
        credentials: dict[str, str],
        *,
        base_url: str | None = None,
        webhook_secret: str = "",
        timeout: float = 10.0,
    ):
        self._token = credentials["API_TOKEN"]
        self.base_url = (base_url or BASE_URL).rstrip("/")
        self.webhook_secret = webhook_secret
        self.timeout = timeout
        self._session = requests.Session()

    # --- transport ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, creates: bool = False, **kwargs):
        headers = {"Authorization": f"Token {self._token}", "Accept": "application/json"}
        try:
            response = self._session.request(
                method, f"{self.base_url}{path}", headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError as exc:
            if request_never_sent(exc):
                raise CarrierError(ErrorKind.RETRYABLE, "connect", "could not connect") from exc
            kind = ErrorKind.UNKNOWN if creates else ErrorKind.RETRYABLE
            raise CarrierError(kind, "network", "the connection broke after sending") from exc
        except requests.Timeout as exc:
            kind = ErrorKind.UNKNOWN if creates else ErrorKind.RETRYABLE
            raise CarrierError(kind, "timeout", "no answer in time") from exc
        logger.info("delhivery %s %s → %s", method, path, response.status_code)
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if status == 429 or status >= 500:
            raise CarrierError(
                ErrorKind.RETRYABLE, str(status), _text(body), retry_after_seconds(response.headers)
            )
        if status in (401, 403):
            raise CarrierError(ErrorKind.PERMANENT, "auth", _text(body) or "token refused")
        if status >= 400:
            text = _text(body) or response.reason or ""
            raise CarrierError(
                ErrorKind.INVALID_ADDRESS if _is_address(text) else ErrorKind.PERMANENT, str(status), text
            )
        if body is None:
            kind = ErrorKind.UNKNOWN if creates else ErrorKind.RETRYABLE
            raise CarrierError(kind, "unreadable", "the answer was not JSON")
        return body

    # --- parcels ------------------------------------------------------------------------------
    def _shipment(self, parcel: ParcelRequest) -> dict:
        options = parcel.options or {}
        cod = parcel.cod_amount or Decimal(0)
        total = cod if cod > 0 else (parcel.declared_value or Decimal(0))
        shipment = {
            "name": parcel.recipient_name,
            "add": parcel.address,
            "pin": str(options.get("pincode") or parcel.city).strip(),
            "city": options.get("city_name") or ("" if parcel.city.strip().isdigit() else parcel.city),
            "state": options.get("state", ""),
            "country": options.get("country", "India"),
            "phone": _national_phone(parcel.phone),
            "order": parcel.reference,
            "payment_mode": "COD" if cod > 0 else "Prepaid",
            "cod_amount": str(cod if cod > 0 else Decimal(0)),
            "total_amount": str(total),
            "products_desc": parcel.description,
            "quantity": str(max(parcel.quantity, 1)),
            "weight": str(int((parcel.weight_kg or Decimal("0.5")) * 1000)),
            "shipping_mode": options.get("shipping_mode", "Surface"),
        }
        if options.get("seller_name"):
            shipment["seller_name"] = options["seller_name"]
        return shipment

    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        options = parcel.options or {}
        data = {
            "shipments": [self._shipment(parcel)],
            "pickup_location": {
                "name": options.get("pickup_location") or parcel.pickup_address.get("name", "")
            },
        }
        answer = self._request(
            "POST",
            "/api/cmu/create.json",
            creates=True,
            data={"format": "json", "data": json.dumps(data)},
        )
        packages = answer.get("packages") or []
        package = packages[0] if packages else {}
        waybill = str(package.get("waybill") or "")
        if answer.get("success") is not True or fold(str(package.get("status"))) != "success" or not waybill:
            # Errors inside HTTP 200: the top-level remark, then the package's remarks.
            remarks = package.get("remarks") or []
            text = "; ".join(str(r) for r in remarks if r) or _text(answer) or "package not created"
            if package.get("serviceable") is False or _is_address(text):
                raise CarrierError(ErrorKind.INVALID_ADDRESS, "not_serviceable", text)
            code = "duplicate" if "duplicate" in text.lower() else "rejected"
            raise CarrierError(ErrorKind.PERMANENT, code, text)
        logger.info("delhivery: waybill %s created", waybill)
        return ParcelCreated(
            tracking_number=waybill,
            carrier_reference=str(answer.get("upload_wbn") or ""),
            raw={
                "waybill": waybill,
                "refnum": package.get("refnum"),
                "sort_code": package.get("sort_code"),
                "upload_wbn": answer.get("upload_wbn"),
            },
        )

    def _shipments(self, params: dict) -> list[dict]:
        answer = self._request("GET", "/api/v1/packages/json/", params=params)
        if not isinstance(answer, dict) or answer.get("Error"):  # "No such waybill…" in HTTP 200
            return []
        return [item.get("Shipment") or {} for item in answer.get("ShipmentData") or []]

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        for shipment in self._shipments({"ref_ids": reference}):
            status = shipment.get("Status") or {}
            if str(shipment.get("ReferenceNo")) != reference or str(status.get("StatusType")).upper() == "CN":
                continue
            return ParcelCreated(tracking_number=str(shipment.get("AWB")), raw={"refnum": reference})
        return None

    def cancel_parcel(self, tracking_number: str) -> None:
        answer = self._request(
            "POST", "/api/p/edit", json={"waybill": tracking_number, "cancellation": "true"}
        )
        if answer.get("status") is not True:
            raise CarrierError(ErrorKind.PERMANENT, "cancel", _text(answer) or "cancellation refused")

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        answer = self._request(
            "GET", "/api/p/packing_slip", params={"wbns": ",".join(tracking_numbers), "pdf": "true"}
        )
        links = {str(p.get("wbn")): p.get("pdf_download_link") for p in answer.get("packages") or []}
        missing = [number for number in tracking_numbers if not links.get(number)]
        if missing:
            raise CarrierError(ErrorKind.PERMANENT, "label", f"no label for {', '.join(missing)}")
        pdfs = [self._download(links[number]) for number in tracking_numbers]
        return pdfs[0] if len(pdfs) == 1 else merge_pdfs(pdfs)

    def _download(self, url: str) -> bytes:
        try:  # a storage URL: no API token goes there
            response = requests.get(url, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise CarrierError(ErrorKind.RETRYABLE, "label_fetch", "label download failed") from exc
        if response.status_code >= 400 or not response.content.startswith(b"%PDF"):
            raise CarrierError(ErrorKind.RETRYABLE, "label_fetch", f"label download: {response.status_code}")
        return response.content

    # --- tracking ----------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        updates = []
        for start in range(0, len(tracking_numbers), self.track_batch_size):
            batch = tracking_numbers[start : start + self.track_batch_size]
            for shipment in self._shipments({"waybill": ",".join(batch)}):
                updates.extend(self._updates(shipment))
        return updates

    @staticmethod
    def _updates(shipment: dict) -> list[TrackingUpdate]:
        awb = str(shipment.get("AWB") or "")
        scans = [scan.get("ScanDetail") or {} for scan in shipment.get("Scans") or []]
        if not scans and shipment.get("Status"):
            status = shipment["Status"]
            scans = [
                {
                    "ScanType": status.get("StatusType"),
                    "Scan": status.get("Status"),
                    "StatusDateTime": status.get("StatusDateTime"),
                    "ScannedLocation": status.get("StatusLocation"),
                    "Instructions": status.get("Instructions"),
                    "StatusCode": shipment.get("NSLCode", ""),
                }
            ]
        return [
            TrackingUpdate(
                tracking_number=awb,
                raw_code=raw_code(scan.get("ScanType", ""), scan.get("Scan", "")),
                raw_text=str(scan.get("Instructions") or ""),
                occurred_at=_ist(scan.get("StatusDateTime") or scan.get("ScanDateTime")),
                location=str(scan.get("ScannedLocation") or ""),
                raw={"nsl_code": scan.get("StatusCode", ""), "reference": shipment.get("ReferenceNo", "")},
            )
            for scan in scans
            if awb and scan.get("ScanType")
        ]

    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        sent = header_value(headers, WEBHOOK_HEADER)
        if not self.webhook_secret or not sent:
            return False
        return hmac.compare_digest(sent.encode(), self.webhook_secret.encode())

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return []
        items = payload if isinstance(payload, list) else [payload]
        updates = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("Shipment"), dict):
                shipment = {**item["Shipment"], "Scans": []}
                updates.extend(self._updates(shipment))
        return updates

    def cities(self) -> list[City]:
        answer = self._request("GET", "/c/api/pin-codes/json/", params={"filter_codes": ""})
        cities = []
        for item in answer.get("delivery_codes") or []:
            code = item.get("postal_code") or {}
            if code.get("pin"):
                cities.append(
                    City(
                        carrier_city_id=str(code["pin"]),
                        name=str(code.get("city") or code.get("district") or ""),
                        zone=str(code.get("state_code") or ""),
                    )
                )
        return cities
