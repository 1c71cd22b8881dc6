"""A loopback Delhivery B2C API (https://track.delhivery.com) for tests.

It speaks the wire format described in ``carriers/adapters/delhivery.py`` (in parts UNVERIFIED: see
that docstring): ``Authorization: Token <key>`` on every call (401 ``{"detail": ...}`` otherwise);
``POST /api/cmu/create.json`` takes ``format=json&data=<json>`` form-encoded and answers its
refusals inside HTTP 200 (``success: false``, ``rmk``, package ``status: "Fail"``, ``remarks``,
``serviceable``); tracking by ``waybill=a,b`` or ``ref_ids=``; ``StatusType`` × ``Status``; labels
as a ``pdf_download_link`` served by the fake itself under ``/labels/`` (no auth); pushes carrying a
shared token in ``X-Livra-Webhook-Token``.

    with FakeDelhivery() as fake:
        adapter = DelhiveryAdapter(
            fake.credentials, base_url=fake.base_url, webhook_secret=fake.webhook_token
        )
        fake.throttle_next(retry_after=60)  # the next call gets a 429
        fake.delay_next(1.0)  # the next call answers after 1 s
        fake.fail_next(503)  # the next call fails with this status
        fake.push_status(waybill, "RT", "In Transit")  # the parcel is on its way back
        headers, body = fake.webhook(waybill)  # its latest scan, as Delhivery would push it
"""

import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

IST = timezone(timedelta(hours=5, minutes=30))
WEBHOOK_HEADER = "X-Livra-Webhook-Token"
PDF = label_pdf()

# Every (StatusType, Status) the fake can emit (the adapter's default table must cover each).
STATUSES: list[tuple[str, str]] = [
    ("UD", "Manifested"),
    ("UD", "Not Picked"),
    ("UD", "In Transit"),
    ("UD", "Pending"),
    ("UD", "Dispatched"),
    ("DL", "Delivered"),
    ("RT", "In Transit"),
    ("RT", "Pending"),
    ("RT", "Dispatched"),
    ("DL", "RTO"),
    ("CN", "Canceled"),
]
PIN_CODES = {
    "400069": ("Mumbai", "MH"),
    "110001": ("New Delhi", "DL"),
    "560001": ("Bengaluru", "KA"),
}


@dataclass
class DelhiveryPackage:
    waybill: str
    shipment: dict
    pickup_location: str
    scans: list[dict] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return str(self.shipment.get("order", ""))


class FakeDelhivery(FakeServer):
    def __init__(self, token: str | None = None):
        super().__init__()
        self.token = token or secrets.token_hex(20)
        self.webhook_token = secrets.token_urlsafe(16)
        self.packages: dict[str, DelhiveryPackage] = {}
        self.pin_codes = dict(PIN_CODES)
        self.labels: set[str] = set()
        self._next: deque[FakeResponse] = deque()
        self._state = threading.Lock()

    # --- setting up ---------------------------------------------------------------------------
    @property
    def credentials(self) -> dict[str, str]:
        return {"API_TOKEN": self.token}

    def fail_next(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        with self._state:
            self._next.append(FakeResponse(status, body or {"error": "Internal Server Error"}, headers or {}))

    def throttle_next(self, retry_after: int | str = 60) -> None:
        self.fail_next(429, {"detail": "Request was throttled."}, {"Retry-After": str(retry_after)})

    def delay_next(self, seconds: float) -> None:
        """The next call is processed, then answered only after ``seconds``."""
        with self._state:
            self._next.append(FakeResponse(delay=seconds))

    def push_status(
        self, waybill: str, status_type: str, status: str, instructions: str = "", nsl: str = ""
    ) -> None:
        package = self.packages[waybill]
        scan = {
            "ScanDateTime": datetime.now(IST).replace(tzinfo=None).isoformat(timespec="milliseconds"),
            "ScanType": status_type,
            "Scan": status,
            "StatusDateTime": datetime.now(IST).replace(tzinfo=None).isoformat(timespec="milliseconds"),
            "ScannedLocation": "Mumbai_Andheri_D (Maharashtra)",
            "StatusCode": nsl or "X-PPOM",
            "Instructions": instructions or status,
        }
        with self._state:
            package.scans.append(scan)

    def webhook(self, waybill: str, token: str | None = None) -> tuple[dict, bytes]:
        """The push Delhivery would send for the package's latest scan."""
        package = self.packages[waybill]
        scan = package.scans[-1]
        body = {
            "Shipment": {
                "Status": {
                    "Status": scan["Scan"],
                    "StatusDateTime": scan["StatusDateTime"],
                    "StatusType": scan["ScanType"],
                    "StatusLocation": scan["ScannedLocation"],
                    "Instructions": scan["Instructions"],
                },
                "PickUpDate": scan["StatusDateTime"],
                "NSLCode": scan["StatusCode"],
                "Sortcode": "BOM/AND",
                "ReferenceNo": package.reference,
                "AWB": waybill,
            }
        }
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_HEADER: self.webhook_token if token is None else token,
        }
        return headers, json.dumps(body).encode()

    def by_reference(self, reference: str) -> DelhiveryPackage | None:
        return next((p for p in self.packages.values() if p.reference == reference), None)

    # --- the API ------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path.startswith("/labels/"):
            if request.path.removeprefix("/labels/").removesuffix(".pdf") not in self.labels:
                return FakeResponse(403, "<Error><Code>AccessDenied</Code></Error>")
            return FakeResponse(200, PDF, {"Content-Type": "application/pdf"})
        if request.headers.get("Authorization") != f"Token {self.token}":
            return FakeResponse(401, {"detail": "Invalid token."})
        with self._state:
            planned = self._next.popleft() if self._next else None
        if planned is not None and planned.status != 200:
            return planned
        response = self._route(request)
        if planned is not None:
            response.delay = planned.delay
        return response

    def _route(self, request: FakeRequest) -> FakeResponse:
        if request.method == "POST" and request.path == "/api/cmu/create.json":
            return self._create(request)
        if request.method == "GET" and request.path == "/api/v1/packages/json/":
            return self._track(request)
        if request.method == "POST" and request.path == "/api/p/edit":
            return self._edit(request.json() or {})
        if request.method == "GET" and request.path == "/api/p/packing_slip":
            return self._packing_slip(request)
        if request.method == "GET" and request.path == "/c/api/pin-codes/json/":
            return self._pin_codes(request)
        return FakeResponse(404, {"detail": "Not found."})

    def _create(self, request: FakeRequest) -> FakeResponse:
        form = {name: values[-1] for name, values in request.form().items()}
        if form.get("format") != "json":
            return FakeResponse(200, {"success": False, "rmk": "format key missing in POST", "packages": []})
        try:
            data = json.loads(form.get("data", ""))
        except ValueError:
            return FakeResponse(200, {"success": False, "rmk": "Invalid data: not a JSON", "packages": []})
        shipment = (data.get("shipments") or [{}])[0]
        pickup = (data.get("pickup_location") or {}).get("name", "")
        reference = str(shipment.get("order", ""))
        fail = None
        serviceable = str(shipment.get("pin")) in self.pin_codes
        if not pickup:
            fail = "ClientWarehouse matching query does not exist."
        elif shipment.get("payment_mode") not in ("COD", "Prepaid", "Pickup"):
            fail = "Invalid payment mode"
        elif not serviceable:
            fail = "Crashing while saving package due to exception 'non serviceable pincode'"
        elif self.by_reference(reference) is not None:
            fail = f"Duplicate order id {reference}"
        elif not shipment.get("name") or not shipment.get("add") or not shipment.get("phone"):
            fail = "Consignee name, address and phone are required"
        package_answer = {
            "status": "Fail" if fail else "Success",
            "client": "LIVRA",
            "sort_code": "BOM/AND" if serviceable else None,
            "remarks": [fail] if fail else [""],
            "waybill": "",
            "cod_amount": float(shipment.get("cod_amount") or 0),
            "payment": shipment.get("payment_mode"),
            "serviceable": serviceable,
            "refnum": reference,
        }
        if not fail:
            waybill = f"1490{secrets.randbelow(10**10):010d}"
            package = DelhiveryPackage(waybill, shipment, pickup)
            with self._state:
                self.packages[waybill] = package
            self.push_status(waybill, "UD", "Manifested", "Manifest uploaded", "X-UCI")
            package_answer["waybill"] = waybill
        return FakeResponse(
            200,
            {
                "cash_pickups_count": 0,
                "package_count": 1,
                "upload_wbn": f"UPL{secrets.randbelow(10**12)}",
                "replacement_count": 0,
                "pickups_count": 0,
                "packages": [package_answer],
                "cash_pickups": 0.0,
                "cod_count": 1 if shipment.get("payment_mode") == "COD" and not fail else 0,
                "success": not fail,
                "prepaid_count": 1 if shipment.get("payment_mode") == "Prepaid" and not fail else 0,
                "cod_amount": float(shipment.get("cod_amount") or 0),
                **({"rmk": "An error occurred while processing your request"} if fail else {}),
            },
        )

    def _track(self, request: FakeRequest) -> FakeResponse:
        waybills = request.query.get("waybill", [""])[0]
        references = request.query.get("ref_ids", [""])[0]
        if waybills:
            found = [self.packages[w] for w in waybills.split(",") if w in self.packages]
        else:
            wanted = set(references.split(","))
            found = [p for p in self.packages.values() if p.reference in wanted]
        if not found:
            return FakeResponse(200, {"Error": "No such waybill or Order Id found"})
        return FakeResponse(200, {"ShipmentData": [{"Shipment": self._shipment(p)} for p in found]})

    @staticmethod
    def _shipment(package: DelhiveryPackage) -> dict:
        last = package.scans[-1]
        return {
            "AWB": package.waybill,
            "ReferenceNo": package.reference,
            "Origin": "Mumbai_Andheri_D (Maharashtra)",
            "Destination": package.shipment.get("city"),
            "CODAmount": float(package.shipment.get("cod_amount") or 0),
            "OrderType": package.shipment.get("payment_mode"),
            "Status": {
                "Status": last["Scan"],
                "StatusType": last["ScanType"],
                "StatusDateTime": last["StatusDateTime"],
                "StatusLocation": last["ScannedLocation"],
                "Instructions": last["Instructions"],
            },
            "Scans": [{"ScanDetail": scan} for scan in package.scans],
        }

    def _edit(self, body: dict) -> FakeResponse:
        waybill = str(body.get("waybill", ""))
        package = self.packages.get(waybill)
        if package is None:
            return FakeResponse(200, {"status": False, "error": f"Waybill {waybill} not found"})
        if str(body.get("cancellation")).lower() == "true":
            if package.scans[-1]["ScanType"] != "UD" or package.scans[-1]["Scan"] not in (
                "Manifested",
                "Not Picked",
            ):
                return FakeResponse(200, {"status": False, "remark": "Shipment cannot be cancelled now"})
            self.push_status(waybill, "CN", "Canceled", "Seller cancelled the order")
        return FakeResponse(
            200, {"status": True, "remark": "Shipment has been cancelled", "waybill": waybill}
        )

    def _packing_slip(self, request: FakeRequest) -> FakeResponse:
        waybills = [w for w in request.query.get("wbns", [""])[0].split(",") if w]
        packages = []
        for waybill in waybills:
            if waybill in self.packages:
                name = secrets.token_hex(8)
                with self._state:
                    self.labels.add(name)
                packages.append({"wbn": waybill, "pdf_download_link": f"{self.base_url}/labels/{name}.pdf"})
        return FakeResponse(200, {"packages": packages, "packages_found": len(packages)})

    def _pin_codes(self, request: FakeRequest) -> FakeResponse:
        wanted = [c for c in request.query.get("filter_codes", [""])[0].split(",") if c]
        codes = {pin: value for pin, value in self.pin_codes.items() if not wanted or pin in wanted}
        return FakeResponse(
            200,
            {
                "delivery_codes": [
                    {
                        "postal_code": {
                            "pin": int(pin),
                            "city": city,
                            "district": city,
                            "state_code": state,
                            "cod": "Y",
                            "pre_paid": "Y",
                            "pickup": "Y",
                            "repl": "Y",
                            "is_oda": "N",
                            "country_code": "IN",
                        }
                    }
                    for pin, (city, state) in codes.items()
                ]
            },
        )
