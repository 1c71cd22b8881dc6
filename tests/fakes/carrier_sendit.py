"""A loopback Sendit API v1 (Morocco) for the adapter's tests and the demo.

It speaks the wire format of carriers.md §3 and the vendor doc copy (#55718970566): ``POST
/api/v1/login`` with ``{"public_key", "secret_key"}`` → a Bearer token (401 otherwise); JSON bodies;
answers ``{"success", "message", "data"}``; Laravel-style 422 ``{"message", "errors": {field: [..]}}``;
codes 250–252 for the products field; 1,000 requests per hour with ``X-RateLimit-*`` headers and
a 429 + ``Retry-After`` beyond. It keeps parcels in memory, lets a test move a parcel on, and signs
the status webhook as third-party code says Sendit does (hex HMAC-SHA256 of the raw body in
``X-Sendit-Signature``: UNVERIFIED, see the adapter's docstring).

    with FakeSendit() as fake:
        adapter = SenditAdapter(fake.credentials, base_url=fake.api_url, webhook_secret=fake.webhook_secret)
        created = adapter.create_parcel(...)
        fake.push_status(created.tracking_number, "DELIVERING")
        webhook = fake.webhook(created.tracking_number, "DELIVERED")  # .headers, .body
        fake.fail_next(500)          # the next API call gets a 500
        fake.error_in_200_next("…")  # the next API call gets {"success": false} with HTTP 200
        fake.hang_next(0.5)          # the next API call is processed, then answered 0.5 s late
        fake.answer_creates_after(0.1, 0.2)  # every create is processed, then answered 100–200 ms late
        fake.hourly_limit = 2        # the third call this hour gets a 429
"""

import hashlib
import hmac
import itertools
import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

STATUSES = (
    "PENDING",
    "TO_PREPARE",
    "NEW_DESTINATION",
    "TO_PICKUP",
    "PICKEDUP",
    "WAREHOUSE",
    "TRANSIT",
    "DISTRIBUTED",
    "UNREACHABLE",
    "POSTPONED",
    "DELIVERING",
    "DELIVERED",
    "CANCELED",
    "REJECTED",
)
DISTRICTS = [
    {
        "id": 1,
        "ville": "Casablanca",
        "name": "Casablanca - Ain sebaa",
        "price": 19,
        "delais": "24h",
        "active": 1,
    },
    {
        "id": 2,
        "ville": "Casablanca",
        "name": "Casablanca - Maarif",
        "price": 19,
        "delais": "24h",
        "active": 1,
    },
    {"id": 3, "ville": "Rabat", "name": "Rabat - Agdal", "price": 25, "delais": "48h", "active": 1},
    {"id": 4, "ville": "Marrakech", "name": "Marrakech - Guéliz", "price": 30, "delais": "48h", "active": 1},
]
PDF = label_pdf()
_DELIVERY = re.compile(r"^/api/v1/deliveries/(?P<code>[A-Z0-9]+)$")
UNAUTHORIZED = {"error": "Accès non autorisé"}


@dataclass
class SignedWebhook:
    headers: dict[str, str]
    body: bytes


class FakeSendit(FakeServer):
    def __init__(self):
        super().__init__()
        self.public_key = secrets.token_hex(16)
        self.secret_key = secrets.token_hex(16)
        self.webhook_secret = secrets.token_hex(16)
        self.tokens: set[str] = set()
        self.deliveries: dict[str, dict] = {}
        self.districts = [dict(district) for district in DISTRICTS]
        self.stock = {"P001": 5}
        self.hourly_limit = 1000
        self.page_size = 2  # small pages so listing follows pagination
        self._calls_this_hour: list[float] = []
        self._next: list[FakeResponse] = []
        self._state = threading.Lock()
        self._numbers = itertools.count(1)
        self._create_latency: tuple[float, float] | None = None

    # --- setting up ------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    @property
    def credentials(self) -> dict[str, str]:
        return {"PUBLIC_KEY": self.public_key, "SECRET_KEY": self.secret_key}

    def fail_next(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        """The next authenticated API call gets this answer (and changes nothing)."""
        body = (
            body
            if body is not None
            else {"success": False, "message": "Une erreur s'est produite côté serveur"}
        )
        with self._state:
            self._next.append(FakeResponse(status, body, dict(headers or {})))

    def error_in_200_next(self, message: str = "Opération impossible") -> None:
        self.fail_next(200, {"success": False, "message": message})

    def hang_next(self, seconds: float) -> None:
        """The next call is processed (a create does create) and answered ``seconds`` late."""
        with self._state:
            self._next.append(FakeResponse(0, b"", {}, delay=seconds))

    def answer_creates_after(self, low: float, high: float) -> None:
        """Every create is processed when it arrives (the parcel exists), then answered after a
        delay drawn between ``low`` and ``high`` seconds: a client that dies meanwhile has created it."""
        self._create_latency = (low, high)

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def push_status(self, code: str, status: str, *, comment: str = "", at: str | None = None) -> dict:
        """Sendit moves the parcel on: a new status, ``last_action_at`` and an audit line."""
        delivery = self.deliveries[code]
        at = at or datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        delivery.update(status=status, comment=comment, last_action_at=at)
        delivery["audits"].append(self._audit(delivery))
        return delivery

    def webhook(
        self, code: str, status: str, *, message: str = "", secret: str | None = None
    ) -> SignedWebhook:
        """The status webhook Sendit posts (shape per third-party code; UNVERIFIED)."""
        delivery = self.deliveries.get(code, {})
        payload = {
            "event": "delivery.status.update",
            "code": code,
            "oldStatus": delivery.get("status"),
            "newStatus": status,
            "lastActionAt": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "message": message,
            "proofImage": None,
            "deliverBy": None,
            "counterUnreachable": 1 if status == "UNREACHABLE" else 0,
        }
        body = json.dumps(payload).encode()
        key = (secret if secret is not None else self.webhook_secret).encode()
        signature = hmac.new(key, body, hashlib.sha256).hexdigest()
        return SignedWebhook({"Content-Type": "application/json", "X-Sendit-Signature": signature}, body)

    # --- looking back ----------------------------------------------------------------------------
    def calls(self, method: str, path: str) -> list[FakeRequest]:
        return [r for r in self.requests if r.method == method and r.path == f"/api/v1{path}"]

    # --- the API ---------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET" and request.path.startswith(("/pdf/", "/files/")):
            return FakeResponse(200, PDF, {"Content-Type": "application/pdf"})  # public files
        if not request.path.startswith("/api/v1/"):
            return FakeResponse(404, {"error": "Page non trouvée"})
        limited = self._rate_limited()
        if limited is not None:
            return limited
        if request.path == "/api/v1/login" and request.method == "POST":
            return self._login(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return FakeResponse(401, UNAUTHORIZED)
        with self._state:
            planned = self._next.pop(0) if self._next else None
        if planned is not None and planned.status:
            return planned
        response = self._route(request)
        if planned is not None:
            response.delay = planned.delay
        if self._create_latency and (request.method, request.path) == ("POST", "/api/v1/deliveries"):
            response.delay = max(response.delay, random.uniform(*self._create_latency))
        return response

    def _rate_limited(self) -> FakeResponse | None:
        now = time.time()
        with self._state:
            self._calls_this_hour = [at for at in self._calls_this_hour if at > now - 3600]
            if len(self._calls_this_hour) >= self.hourly_limit:
                retry_after = int(self._calls_this_hour[0] + 3600 - now) + 1
                headers = {
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Limit": str(self.hourly_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(now) + retry_after),
                }
                return FakeResponse(429, {"message": "Too Many Attempts."}, headers)
            self._calls_this_hour.append(now)
        return None

    def _login(self, request: FakeRequest) -> FakeResponse:
        try:
            body = request.json()
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or body.get("public_key") != self.public_key
            or body.get("secret_key") != self.secret_key
        ):
            return FakeResponse(401, {"success": False, "message": "Accès non autorisé à Utilisateur"})
        token = f"{secrets.randbelow(10**6)}|{secrets.token_urlsafe(30)}"
        self.tokens.add(token)
        return FakeResponse(
            200,
            {
                "success": True,
                "message": "Connexion effectuée avec succès.",
                "data": {"token": token, "name": "Boutique"},
            },
        )

    def _route(self, request: FakeRequest) -> FakeResponse:
        path, method = request.path, request.method
        if path == "/api/v1/deliveries" and method == "POST":
            return self._create(request)
        if path == "/api/v1/deliveries" and method == "GET":
            return self._list(request)
        if path == "/api/v1/deliveries/getlabels" and method == "POST":
            return self._labels(request)
        if path == "/api/v1/districts" and method == "GET":
            return self._paginate(request, self.districts, "Liste des districts.")
        match = _DELIVERY.match(path)
        if match and match["code"] in self.deliveries:
            delivery = self.deliveries[match["code"]]
            if method == "GET":
                return FakeResponse(200, {"success": True, "message": "Detail de colis.", "data": delivery})
            if method == "DELETE":
                if delivery["status"] not in ("PENDING", "TO_PREPARE"):
                    return FakeResponse(403, {"error": "Vous n'avez pas les autorisations nécessaires"})
                del self.deliveries[match["code"]]
                return FakeResponse(200, {"success": True, "message": "Colis supprimé avec succes."})
        return FakeResponse(404, {"error": "Page non trouvée"})

    def _create(self, request: FakeRequest) -> FakeResponse:
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            return FakeResponse(
                422, {"message": "Les données fournies sont invalides", "errors": {"name": ["required"]}}
            )
        form = request.json()
        errors: dict[str, list[str]] = {}
        for name in ("district_id", "name", "amount", "address", "phone"):
            if form.get(name) in (None, ""):
                errors[name] = [f"Le champ {name} est obligatoire."]
        district = next((d for d in self.districts if d["id"] == form.get("district_id")), None)
        if "district_id" not in errors and district is None:
            errors["district_id"] = ["Le district sélectionné est invalide."]
        if errors:
            return FakeResponse(422, {"message": "Les données fournies sont invalides", "errors": errors})
        products = form.get("products") or ""
        if form.get("products_from_stock"):
            if not isinstance(products, str) or not products:
                return FakeResponse(
                    250, {"success": False, "code": 250, "message": "Le champ produits est incorrect !"}
                )
            missing = [code for code in products.split(",") if code.split(":")[0] not in self.stock]
            if missing:
                return FakeResponse(
                    251,
                    {
                        "success": False,
                        "code": 251,
                        "message": f"Les produits suivants {','.join(missing)} n'existent pas",
                    },
                )
        code = f"D{next(self._numbers):07d}"
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        delivery = {
            "code": code,
            "status": "PENDING",
            "fee": district["price"] + 16,
            "name": form["name"],
            "phone": form["phone"],
            "address": form["address"],
            "amount": form["amount"],
            "comment": form.get("comment", ""),
            "reference": form.get("reference", ""),
            "products": [],
            "products_from_stock": form.get("products_from_stock", 0),
            "district": district,
            "last_action_at": now,
            "allow_open": form.get("allow_open", 1),
            "allow_try": form.get("allow_try", 1),
            "status_return": "RETOUR_PENDING",
            "option_exchange": form.get("option_exchange", 0),
            "labelUrl": f"{self.base_url}/files/{secrets.token_urlsafe(24)}",
            "audits": [],
        }
        delivery["audits"].append(self._audit(delivery))
        self.deliveries[code] = delivery
        return FakeResponse(200, {"success": True, "message": "Detail de colis.", "data": delivery})

    @staticmethod
    def _audit(delivery: dict) -> dict:
        keys = ("code", "name", "amount", "phone", "address", "comment", "reference", "status", "fee")
        data = {key: delivery[key] for key in keys}
        data.update(last_action_at=delivery["last_action_at"], status_return=delivery["status_return"])
        return {
            "data": data,
            "event": "updated",
            "user": "Sendit",
            "created_at": "mardi 2 septembre 2025, à 10:15",
        }

    def _list(self, request: FakeRequest) -> FakeResponse:
        query = (request.query.get("querystring") or [""])[0].casefold()
        found = [
            delivery
            for delivery in self.deliveries.values()
            if not query
            or any(
                query in str(delivery[key]).casefold()
                for key in ("code", "name", "phone", "address", "reference")
            )
        ]
        return self._paginate(request, found, "Liste des colis.")

    def _paginate(self, request: FakeRequest, rows: list, message: str) -> FakeResponse:
        page = int((request.query.get("page") or ["1"])[0])
        last_page = max(1, -(-len(rows) // self.page_size))
        start = (page - 1) * self.page_size
        url = f"{self.base_url}{request.path}"
        return FakeResponse(
            200,
            {
                "success": True,
                "message": message,
                "data": rows[start : start + self.page_size],
                "total": len(rows),
                "per_page": self.page_size,
                "current_page": page,
                "last_page": last_page,
                "next_page_url": f"{url}?page={page + 1}" if page < last_page else None,
                "prev_page_url": f"{url}?page={page - 1}" if page > 1 else None,
            },
        )

    def _labels(self, request: FakeRequest) -> FakeResponse:
        codes = [code for code in str(request.json().get("codesToPrint", "")).split(",") if code]
        if not codes or any(code not in self.deliveries for code in codes):
            return FakeResponse(404, {"error": "Page non trouvée"})
        name = f"labels_colis_U{secrets.token_hex(5).upper()}.pdf"
        return FakeResponse(
            200,
            {
                "success": True,
                "message": "Impression des étiquettes.",
                "data": {"filePrint": True, "fileUrl": f"{self.base_url}/pdf/{name}"},
            },
        )
