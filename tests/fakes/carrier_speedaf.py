"""A loopback Speedaf Open API (v2) for tests and the demo.

Wire format (see ``carriers/adapters/speedaf.py`` for sources and what is UNVERIFIED): every call
is ``POST /open-api/<path>?appCode=&timestamp=<ms>`` with a JSON body ``{"data": ...}``; every
answer is HTTP 200 with ``{"success", "error": {"code", "message"} | null, "data"}`` — a wrong app
code is 70401, a missing timestamp 70501, one more than 5 minutes off 70502, all inside HTTP 200.
The business error codes this fake uses for a missing field, a city it does not serve, a duplicate
reference or a late cancel (``1001``…``1004``) are illustrative: Speedaf's are not in our sources.
It also answers what a gateway in front would: 429 with ``Retry-After``, 5xx.

    with FakeSpeedaf() as fake:
        adapter = SpeedafAdapter(fake.credentials(), base_url=fake.base_url, webhook_secret=fake.secret_key)
        fake.push(bill_code, "4")  # out for delivery, seen by the next track query
        request = fake.webhook(bill_code, "5")  # a signed push: request.headers, request.body
        fake.fail_next("70502", "timestamp expired")  # the next call is refused inside HTTP 200
        fake.throttle_next(retry_after=30)  # the next call gets a 429
        fake.delay_next(0.5)  # the next call is served, but answered 0.5 s late
"""

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

TIMESTAMP_WINDOW_MS = 5 * 60 * 1000

# Every tracking code this fake can report (action codes, and problem codes as subAction).
ACTIONS = {
    "1": "Picked up",
    "2": "Sent from site",
    "3": "Arrived at hub",
    "4": "Out for delivery",
    "5": "Signed",
    "-710": "Return in progress",
    "730": "Return signed",
    "150": "Inbound",
    "181": "Bagged",
    "190": "Outbound",
    "191": "Domestic handover done",
    "220": "Flight departed",
    "230": "Flight landed",
    "360": "Customs clearance",
    "370": "Customs cleared",
    "375": "To central warehouse",
    "401": "Customs problem",
    "5573": "Undeliverable (force majeure)",
}
PROBLEM_CODES = {
    "IP01": "Consignee unreachable",
    "IP02": "Address incomplete",
    "IP03": "Address changed",
    "IP04": "Outside delivery area",
    "IP05": "Refused by consignee",
    "IP06": "Delivery rescheduled by consignee",
    "IP07": "Missorted",
    "IP08": "To collect at pick-up point",
    "IP09": "Return requested by shipper",
    "IP10": "Duplicate order",
    "IP11": "Lost",
    "IP12": "Damaged",
    "IP13": "Waybill changed",
    "IP14": "Other problem",
    "IP16": "Paid in advance",
}
PROBLEM_ACTION = "-1"  # the action a problem scan rides on in this fake (UNVERIFIED)

CITIES = {
    "C1": ("Casablanca", "Casablanca - Settat"),
    "C2": ("Rabat", "Rabat - Salé - Kénitra"),
    "C3": ("Marrakech", "Marrakech - Safi"),
    "C4": ("Fès", "Fès - Meknès"),
}
REQUIRED = ("customOrderNo", "acceptName", "acceptMobile", "acceptAddress", "acceptCityCode", "customerCode")


def minimal_pdf(text: str = "label") -> bytes:
    return label_pdf(text)


def envelope(data=None, code: str = "", message: str = "") -> dict:
    if code:
        return {"success": False, "error": {"code": code, "message": message}, "data": None}
    return {"success": True, "error": None, "data": data}


@dataclass
class SpeedafParcel:
    bill_code: str
    order: dict
    tracks: list[dict] = field(default_factory=list)
    cancelled: bool = False

    @property
    def reference(self) -> str:
        return self.order.get("customOrderNo", "")


@dataclass(frozen=True)
class SignedSpeedafPush:
    headers: dict[str, str]
    body: bytes

    def tampered(self, body: bytes) -> "SignedSpeedafPush":
        return SignedSpeedafPush(self.headers, body)


class FakeSpeedaf(FakeServer):
    def __init__(self, app_code: str | None = None, secret_key: str | None = None):
        super().__init__()
        self.app_code = app_code or "MA" + secrets.token_hex(3).upper()
        self.customer_code = "MA000025"
        self.platform_source = "Livra"
        self.secret_key = secret_key or secrets.token_hex(8)
        self.parcels: dict[str, SpeedafParcel] = {}
        self._next: deque[FakeResponse | float] = deque()
        self._state = threading.Lock()
        self._seq = 0

    # --- setting up ------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {
            "APP_CODE": self.app_code,
            "CUSTOMER_CODE": self.customer_code,
            "PLATFORM_SOURCE": self.platform_source,
        }

    def fail_next(self, code: str, message: str = "error") -> None:
        """The next call is refused inside HTTP 200 with Speedaf's ``error`` object."""
        with self._state:
            self._next.append(FakeResponse(200, envelope(code=code, message=message)))

    def throttle_next(self, retry_after: int | str = 30) -> None:
        with self._state:
            self._next.append(FakeResponse(429, "Too Many Requests", {"Retry-After": str(retry_after)}))

    def server_error_next(self, status: int = 502) -> None:
        with self._state:
            self._next.append(FakeResponse(status, "<html>Bad Gateway</html>", {"Content-Type": "text/html"}))

    def delay_next(self, seconds: float) -> None:
        """Serve the next call (a create does create), but answer ``seconds`` late."""
        with self._state:
            self._next.append(seconds)

    def push(self, bill_code: str, code: str, *, when: str | None = None, message: str = "") -> dict:
        """Record a scan for a parcel: an action code, or a problem code (as ``subAction``)."""
        if code in ACTIONS:
            action, sub_action, name = code, "", ACTIONS[code]
        elif code in PROBLEM_CODES:
            action, sub_action, name = PROBLEM_ACTION, f"{code}-01", PROBLEM_CODES[code]
        else:
            raise ValueError(f"Speedaf code this fake does not know: {code}")
        track = {
            "mailNo": bill_code,
            "action": action,
            "subAction": sub_action,
            "actionName": name,
            "message": message or name,
            "msgEng": message or name,
            "msgLoc": message or name,
            "time": when or time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "timezone": 0,
        }
        with self._state:
            self.parcels[bill_code].tracks.append(track)
        return track

    def webhook(self, bill_code: str, code: str, *, timestamp_ms: int | None = None) -> SignedSpeedafPush:
        """A push as Speedaf sends it (§5.5 as copied by third parties), signed with the secret."""
        track = self.push(bill_code, code)
        event_id = f"{self.customer_code}_{bill_code}_{secrets.token_hex(4)}"
        body = json.dumps(
            {
                "eventId": event_id,
                "customerCode": self.customer_code,
                "mailNo": bill_code,
                "eventType": "TRACK_UPDATE",
                "tracks": [track],
            },
            separators=(",", ":"),
        ).encode()
        timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        mac = hmac.new(self.secret_key.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-Speedaf-App-Code": self.app_code,
            "X-Speedaf-Timestamp": timestamp,
            "X-Speedaf-Event-Type": "TRACK_UPDATE",
            "X-Speedaf-Event-Id": event_id,
            "X-Speedaf-Signature": "hmac-sha256=" + mac.hexdigest(),
        }
        return SignedSpeedafPush(headers, body)

    def by_reference(self, reference: str) -> SpeedafParcel | None:
        return next((p for p in self.parcels.values() if p.reference == reference), None)

    # --- serving ---------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET" and request.path.startswith("/labels/"):
            return FakeResponse(200, minimal_pdf(request.path), {"Content-Type": "application/pdf"})
        with self._state:
            planned = self._next.popleft() if self._next else None
        if isinstance(planned, FakeResponse):
            return planned
        response = self._serve(request)
        if isinstance(planned, float | int):
            response.delay = float(planned)
        return response

    def _serve(self, request: FakeRequest) -> FakeResponse:
        if request.method != "POST":
            return FakeResponse(405, "")
        app_code = (request.query.get("appCode") or [""])[0]
        timestamp = (request.query.get("timestamp") or [""])[0]
        if app_code != self.app_code:
            return FakeResponse(200, envelope(code="70401", message="appCode is invalid"))
        if not timestamp.isdigit():
            return FakeResponse(200, envelope(code="70501", message="timestamp is missing"))
        if abs(time.time() * 1000 - int(timestamp)) > TIMESTAMP_WINDOW_MS:
            return FakeResponse(200, envelope(code="70502", message="timestamp expired"))
        try:
            data = request.json()["data"]
        except (ValueError, KeyError, TypeError):
            return FakeResponse(200, envelope(code="70001", message="request format invalid"))
        routes = {
            "/open-api/express/order/v2/createOrder": self._create,
            "/open-api/express/order/v2/cancelOrder": self._cancel,
            "/open-api/express/order/v2/print": self._print,
            "/open-api/express/track/v2/query": self._track,
            "/open-api/common/area/v2/getTreeByCountryCode": self._tree,
        }
        route = routes.get(request.path)
        if route is None:
            return FakeResponse(404, {"status": 404, "error": "Not Found", "path": request.path})
        return FakeResponse(200, route(data))

    def _create(self, order: dict) -> dict:
        missing = [name for name in REQUIRED if not order.get(name)]
        if missing:
            return envelope(code="1001", message="; ".join(f"{name}: {name} is null!" for name in missing))
        if order["acceptCityCode"] not in CITIES:
            return envelope(
                code="1002", message=f"acceptCityCode: city {order['acceptCityCode']} not in service area"
            )
        if order["customerCode"] != self.customer_code:
            return envelope(code="1004", message="customerCode does not belong to this appCode")
        with self._state:
            if any(p.reference == order["customOrderNo"] for p in self.parcels.values()):
                return envelope(code="1003", message="customOrderNo already exists")
            self._seq += 1
            bill_code = f"MA02{self._seq:08d}"
            self.parcels[bill_code] = SpeedafParcel(bill_code, order)
        return envelope({"billCode": bill_code, "customOrderNo": order["customOrderNo"], "labelUrl": None})

    def _cancel(self, items: list) -> dict:
        results = []
        for item in items or []:
            parcel = self.parcels.get(item.get("billCode", ""))
            if parcel is None:
                results.append(
                    {"billCode": item.get("billCode"), "success": False, "message": "waybill not found"}
                )
            elif parcel.tracks:
                results.append(
                    {"billCode": parcel.bill_code, "success": False, "message": "already picked up"}
                )
            else:
                parcel.cancelled = True
                results.append({"billCode": parcel.bill_code, "success": True, "message": None})
        return envelope(results)

    def _print(self, data: dict) -> dict:
        numbers = data.get("waybillNoList") or []
        unknown = [n for n in numbers if n not in self.parcels]
        if not numbers or unknown:
            return envelope(code="1005", message=f"waybill not found: {','.join(unknown)}")
        token = secrets.token_hex(6)
        return envelope({"urls": [f"{self.base_url}/labels/{token}.pdf"], "orderLabels": []})

    def _track(self, data: dict) -> dict:
        results = []
        for number in data.get("mailNoList") or []:
            parcel = self.parcels.get(number)
            if parcel is not None:
                results.append({"mailNo": number, "tracks": list(parcel.tracks)})
        return envelope(results)

    def _tree(self, data: dict) -> dict:
        provinces: dict[str, list] = {}
        for code, (name, province) in CITIES.items():
            provinces.setdefault(province, []).append({"code": code, "name": name, "type": 2, "children": []})
        return envelope(
            [
                {
                    "code": data.get("countryCode", "MA"),
                    "name": "Morocco",
                    "type": 0,
                    "children": [
                        {"code": f"P{i}", "name": province, "type": 1, "children": cities}
                        for i, (province, cities) in enumerate(provinces.items(), 1)
                    ],
                }
            ]
        )
