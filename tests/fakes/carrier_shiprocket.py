"""A loopback Shiprocket API (https://apiv2.shiprocket.in/v1/external) for tests.

It speaks the wire format described in ``carriers/adapters/shiprocket.py`` (itself UNVERIFIED in
parts: see that docstring): ``POST /v1/external/auth/login`` → a Bearer token; every other call
needs it (401 ``{"message": "Token has expired", "status_code": 401}`` otherwise); JSON bodies;
validation errors as 422 ``{"message", "errors": {field: [...]}, "status_code": 422}``; AWB
assignment failures inside HTTP 200 (``awb_assign_status: 0``); labels as a ``label_url`` served by
the fake itself under ``/labels/`` (no auth, like a storage URL); webhooks with ``x-api-key``.

    with FakeShiprocket() as fake:
        adapter = ShiprocketAdapter(
            fake.credentials, base_url=fake.api_url, webhook_secret=fake.webhook_token
        )
        fake.throttle_next(retry_after=30)  # the next API call gets a 429
        fake.delay_next(1.0)  # the next API call answers after 1 s
        fake.fail_next(500)  # the next API call fails with this status
        fake.unserviceable_pincodes.add("999999")  # no courier serves that PIN code
        fake.push_status(awb, 17)  # the parcel is out for delivery
        headers, body = fake.webhook(awb, 17)  # what Shiprocket would POST to Livra
"""

import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

PREFIX = "/v1/external"
IST = timezone(timedelta(hours=5, minutes=30))
PDF = label_pdf()

# The status ids the fake can emit (the adapter's default table must cover every one).
STATUSES: dict[int, str] = {
    6: "SHIPPED",
    7: "DELIVERED",
    9: "RTO INITIATED",
    10: "RTO DELIVERED",
    12: "LOST",
    14: "RTO ACKNOWLEDGED",
    17: "OUT FOR DELIVERY",
    18: "IN TRANSIT",
    21: "UNDELIVERED",
}
_REQUIRED = (
    "order_id",
    "order_date",
    "pickup_location",
    "billing_customer_name",
    "billing_address",
    "billing_city",
    "billing_pincode",
    "billing_state",
    "billing_country",
    "billing_phone",
    "order_items",
    "payment_method",
    "sub_total",
    "length",
    "breadth",
    "height",
    "weight",
)


@dataclass
class ShiprocketOrder:
    order_id: int
    shipment_id: int
    body: dict
    awb: str = ""
    courier_name: str = ""
    status: str = "NEW"
    history: list[tuple[int, datetime]] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return str(self.body.get("order_id", ""))


class FakeShiprocket(FakeServer):
    def __init__(self, email: str = "api@store.example", password: str | None = None):
        super().__init__()
        self.email = email
        self.password = password or secrets.token_urlsafe(12)
        self.webhook_token = secrets.token_urlsafe(16)
        self.tokens: set[str] = set()
        self.logins = 0
        self.orders: dict[int, ShiprocketOrder] = {}
        self.labels: dict[str, list[int]] = {}
        self.unserviceable_pincodes: set[str] = set()
        self.assign_fails_next = False  # the next AWB assignment times out (the order was made)
        self._next: deque[FakeResponse] = deque()
        self._state = threading.Lock()
        self._ids = iter(range(100_001, 10**9))

    # --- setting up ---------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.base_url + PREFIX

    @property
    def credentials(self) -> dict[str, str]:
        return {"EMAIL": self.email, "PASSWORD": self.password}

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (what 240 h later looks like)."""
        with self._state:
            self.tokens.clear()

    def fail_next(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        body = body or {"message": "Something went wrong", "status_code": status}
        with self._state:
            self._next.append(FakeResponse(status, body, headers or {}))

    def throttle_next(self, retry_after: int | str = 30) -> None:
        self.fail_next(
            429, {"message": "Too Many Attempts.", "status_code": 429}, {"Retry-After": str(retry_after)}
        )

    def delay_next(self, seconds: float) -> None:
        """The next API call is processed, then answered only after ``seconds``."""
        with self._state:
            self._next.append(FakeResponse(delay=seconds))

    def push_status(self, awb: str, status_id: int, at: datetime | None = None) -> None:
        order = self.by_awb(awb)
        with self._state:
            order.history.append((status_id, at or datetime.now(IST)))

    def webhook(self, awb: str, status_id: int, token: str | None = None) -> tuple[dict, bytes]:
        """The headers and body Shiprocket would POST for ``awb`` now at ``status_id``."""
        order = self.by_awb(awb)
        now = datetime.now(IST)
        body = {
            "awb": awb,
            "courier_name": order.courier_name,
            "current_status": STATUSES[status_id],
            "current_status_id": status_id,
            "shipment_status": STATUSES[status_id],
            "shipment_status_id": status_id,
            "current_timestamp": now.strftime("%d %m %Y %H:%M:%S"),
            "order_id": order.reference,
            "sr_order_id": order.order_id,
            "awb_assigned_date": now.strftime("%Y-%m-%d %H:%M:%S"),
            "pickup_scheduled_date": now.strftime("%Y-%m-%d %H:%M:%S"),
            "etd": (now + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S"),
            "scans": [
                {
                    "date": now.strftime("%Y-%m-%d %H:%M:%S"),
                    "status": "X-PPOM",
                    "activity": STATUSES[status_id].title(),
                    "location": "Mumbai_Andheri_H (Maharashtra)",
                    "sr-status": str(status_id),
                    "sr-status-label": STATUSES[status_id],
                }
            ],
            "is_return": 1 if status_id in (9, 10, 14) else 0,
            "channel_id": 3422553,
            "pod_status": "",
            "pod": "Not Available",
        }
        headers = {
            "Content-Type": "application/json",
            "x-api-key": self.webhook_token if token is None else token,
        }
        return headers, json.dumps(body).encode()

    def by_awb(self, awb: str) -> ShiprocketOrder:
        return next(order for order in self.orders.values() if order.awb == awb)

    def by_reference(self, reference: str) -> ShiprocketOrder | None:
        return next((order for order in self.orders.values() if order.reference == reference), None)

    # --- the API ------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path.startswith("/labels/"):
            return self._label_file(request.path.removeprefix("/labels/"))
        if not request.path.startswith(PREFIX + "/"):
            return FakeResponse(404, {"message": "Not found", "status_code": 404})
        path = request.path.removeprefix(PREFIX + "/")
        if path == "auth/login" and request.method == "POST":
            return self._login(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._state:
            authorised = scheme == "Bearer" and token in self.tokens
        if not authorised:
            return FakeResponse(401, {"message": "Token has expired", "status_code": 401})
        with self._state:
            planned = self._next.popleft() if self._next else None
        if planned is not None and planned.status != 200:
            return planned
        response = self._route(request, path)
        if planned is not None:
            response.delay = planned.delay
        return response

    def _route(self, request: FakeRequest, path: str) -> FakeResponse:
        body = request.json() if request.body else {}
        if request.method == "POST" and path == "orders/create/adhoc":
            return self._create(body)
        if request.method == "POST" and path == "courier/assign/awb":
            return self._assign(body)
        if request.method == "POST" and path == "orders/cancel":
            return self._cancel_orders(body)
        if request.method == "POST" and path == "orders/cancel/shipment/awbs":
            return self._cancel_awbs(body)
        if request.method == "POST" and path == "courier/generate/label":
            return self._label(body)
        if request.method == "GET" and path == "orders":
            return self._orders(request.query.get("search", [""])[0])
        match = re.fullmatch(r"courier/track/awb/(?P<awb>[^/]+)", path)
        if request.method == "GET" and match:
            return self._track(match["awb"])
        return FakeResponse(404, {"message": "Not found", "status_code": 404})

    def _login(self, request: FakeRequest) -> FakeResponse:
        body = request.json() or {}
        if body.get("email") != self.email or body.get("password") != self.password:
            return FakeResponse(
                400, {"message": "Invalid email and password combination", "status_code": 400}
            )
        token = secrets.token_urlsafe(24)
        with self._state:
            self.tokens.add(token)
            self.logins += 1
        return FakeResponse(200, {"id": 1, "email": self.email, "company_id": 7, "token": token})

    def _create(self, body: dict) -> FakeResponse:
        errors = {
            name: [f"The {name.replace('_', ' ')} field is required."]
            for name in _REQUIRED
            if not body.get(name)
        }
        pincode = str(body.get("billing_pincode", ""))
        if pincode and not re.fullmatch(r"\d{6}", pincode):
            errors["billing_pincode"] = ["The billing pincode must be 6 digits."]
        if body.get("payment_method") not in ("COD", "Prepaid"):
            errors.setdefault("payment_method", ["The selected payment method is invalid."])
        if errors:
            return FakeResponse(422, {"message": "Oops! Invalid Data.", "errors": errors, "status_code": 422})
        with self._state:
            order = ShiprocketOrder(next(self._ids), next(self._ids), body)
            self.orders[order.order_id] = order
        return FakeResponse(
            200,
            {
                "order_id": order.order_id,
                "shipment_id": order.shipment_id,
                "status": "NEW",
                "status_code": 1,
                "onboarding_completed_now": 0,
                "awb_code": "",
                "courier_company_id": "",
                "courier_name": "",
            },
        )

    def _assign(self, body: dict) -> FakeResponse:
        order = next((o for o in self.orders.values() if o.shipment_id == body.get("shipment_id")), None)
        if order is None:
            return FakeResponse(400, {"message": "Invalid shipment id", "status_code": 400})
        if self.assign_fails_next:
            self.assign_fails_next = False
            return FakeResponse(500, {"message": "Server Error", "status_code": 500})
        if str(order.body.get("billing_pincode")) in self.unserviceable_pincodes:
            return FakeResponse(
                200,
                {
                    "awb_assign_status": 0,
                    "response": {
                        "data": {"awb_assign_error": "Selected pincode is not serviceable by any courier"}
                    },
                },
            )
        with self._state:
            order.awb = order.awb or f"1909{secrets.randbelow(10**9):09d}"
            order.courier_name = "Xpressbees Surface"
            order.status = "READY TO SHIP"
        return FakeResponse(
            200,
            {
                "awb_assign_status": 1,
                "response": {
                    "data": {
                        "courier_company_id": 33,
                        "awb_code": order.awb,
                        "cod": 1 if order.body.get("payment_method") == "COD" else 0,
                        "order_id": order.order_id,
                        "shipment_id": order.shipment_id,
                        "awb_code_status": 1,
                        "applied_weight": float(order.body.get("weight") or 0.5),
                        "courier_name": order.courier_name,
                        "freight_charges": 72.5,
                    }
                },
            },
        )

    def _cancel_orders(self, body: dict) -> FakeResponse:
        with self._state:
            for order_id in body.get("ids") or []:
                if order_id in self.orders:
                    self.orders[order_id].status = "CANCELED"
        return FakeResponse(200, {"status_code": 200, "message": "Order cancelled successfully."})

    def _cancel_awbs(self, body: dict) -> FakeResponse:
        awbs = body.get("awbs") or []
        known = [order for order in self.orders.values() if order.awb in awbs]
        if not known:
            return FakeResponse(400, {"message": "Invalid AWB(s) provided.", "status_code": 400})
        with self._state:
            for order in known:
                order.status = "CANCELED"
        return FakeResponse(
            200, {"message": "Bulk Shipment cancellation is in progress. Please wait for 24 hours."}
        )

    def _label(self, body: dict) -> FakeResponse:
        ids = body.get("shipment_id") or []
        known = {order.shipment_id for order in self.orders.values() if order.awb}
        if not ids or any(i not in known for i in ids):
            return FakeResponse(
                200, {"label_created": 0, "response": "Label not created", "not_created": ids}
            )
        name = secrets.token_hex(8)
        with self._state:
            self.labels[name] = list(ids)
        return FakeResponse(
            200,
            {
                "label_created": 1,
                "label_url": f"{self.base_url}/labels/{name}.pdf",
                "response": "Label has been created and uploaded successfully!",
                "not_created": [],
            },
        )

    def _label_file(self, name: str) -> FakeResponse:
        if name.removesuffix(".pdf") not in self.labels:
            return FakeResponse(
                403, "<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"}
            )
        return FakeResponse(200, PDF, {"Content-Type": "application/pdf"})

    def _orders(self, search: str) -> FakeResponse:
        found = [order for order in self.orders.values() if search and search in order.reference]
        data = [
            {
                "id": order.order_id,
                "channel_order_id": order.reference,
                "status": order.status,
                "payment_method": order.body.get("payment_method"),
                "shipments": [
                    {"id": order.shipment_id, "awb": order.awb or None, "courier": order.courier_name}
                ],
            }
            for order in found
        ]
        return FakeResponse(200, {"data": data, "meta": {"pagination": {"total": len(data)}}})

    def _track(self, awb: str) -> FakeResponse:
        order = next((o for o in self.orders.values() if o.awb == awb), None)
        if order is None or not order.history:
            return FakeResponse(
                200,
                {
                    "tracking_data": {
                        "track_status": 0,
                        "shipment_status": 0,
                        "shipment_track": [
                            {"id": 0, "awb_code": awb, "shipment_id": order and order.shipment_id}
                        ],
                        "shipment_track_activities": None,
                        "error": (
                            "Aahh! There is no activities found in our DB. "
                            "Please have some patience it will be updated soon."
                        ),
                    }
                },
            )
        status_id, _ = order.history[-1]
        activities = [
            {
                "date": at.strftime("%Y-%m-%d %H:%M:%S"),
                "status": "X-PPOM",
                "activity": STATUSES[sid].title(),
                "location": "Mumbai_Andheri_H (Maharashtra)",
                "sr-status": str(sid),
                "sr-status-label": STATUSES[sid],
            }
            for sid, at in reversed(order.history)
        ]
        return FakeResponse(
            200,
            {
                "tracking_data": {
                    "track_status": 1,
                    "shipment_status": status_id,
                    "shipment_track": [
                        {
                            "id": order.order_id,
                            "awb_code": awb,
                            "courier_company_id": 33,
                            "shipment_id": order.shipment_id,
                            "order_id": order.order_id,
                            "current_status": STATUSES[status_id].title(),
                            "destination": order.body.get("billing_city"),
                            "origin": "Mumbai",
                        }
                    ],
                    "shipment_track_activities": activities,
                    "track_url": f"https://shiprocket.co/tracking/{awb}",
                }
            },
        )
