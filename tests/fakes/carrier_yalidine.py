"""A loopback Yalidine API v1 (Algeria) for the adapter's tests and the demo.

It speaks the wire format of Yalidine's doc (carriers.md §3, "Y"): ``X-API-ID`` / ``X-API-TOKEN``
headers (401 otherwise); ``POST /v1/parcels/`` takes a JSON array and answers keyed by ``order_id``,
all or nothing (a parcel it cannot place answers HTTP 200 with ``"success": false`` for that
order and creates nothing); paginated lists ``{"has_more", "total_data", "data", "links"}``;
``x-second/minute/hour/day-quota-left`` on every answer and a 429 with ``Retry-After`` once a quota is
spent. It keeps parcels and their histories in memory, lets a test move a parcel on, and signs
webhooks as the (UNVERIFIED) webhook doc says: hex HMAC-SHA256 of the raw body in
``X-YALIDINE-SIGNATURE``.

    with FakeYalidine() as fake:
        adapter = YalidineAdapter(fake.credentials, base_url=fake.api_url, webhook_secret=fake.webhook_secret)
        fake.push_status("yal-ABC123", "Tentative échouée", reason="Client ne répond pas")
        webhook = fake.status_webhook("yal-ABC123", "Livré")  # .headers, .body
        fake.limits["minute"] = 2    # the third call this minute gets a 429
        fake.fail_next(500)          # the next call gets a 500
        fake.hang_next(0.5)          # the next call is processed, then answered 0.5 s late
        fake.storm(seconds=1800, retry_after=300)  # for 30 min from the next call, 4 in 5 get a 429
"""

import hashlib
import hmac
import itertools
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

# The statuses the fake can report (Y's list, with "Alerte résolue" from histories).
STATUSES = (
    "Pas encore expédié",
    "A vérifier",
    "En préparation",
    "Pas encore ramassé",
    "Prêt à expédier",
    "Ramassé",
    "Bloqué",
    "Débloqué",
    "Transfert",
    "Expédié",
    "Centre",
    "En localisation",
    "Vers Wilaya",
    "Reçu à Wilaya",
    "En attente du client",
    "Sorti en livraison",
    "En attente",
    "En alerte",
    "Alerte résolue",
    "Tentative échouée",
    "Livré",
    "Echèc livraison",
    "Retour vers centre",
    "Retourné au centre",
    "Retour transfert",
    "Retour groupé",
    "Retour à retirer",
    "Retour vers vendeur",
    "Retourné au vendeur",
    "Echange échoué",
)
FAILURE_REASONS = (
    "Téléphone injoignable",
    "Client ne répond pas",
    "Faux numéro",
    "Client absent (reporté)",
    "Client absent (échoué)",
    "Annulé par le client",
    "Commande double",
    "Le client n'a pas commandé",
    "Produit erroné",
    "Produit manquant",
    "Produit cassé ou défectueux",
    "Client incapable de payer",
    "Wilaya erronée",
    "Commune erronée",
    "Client no-show",
)
HOLD_REASONS = ("Document manquant", "Produit interdit", "Produit dangereux", "Fausse déclaration")
COMMUNES = [
    {"id": 1630, "name": "Bordj El Kiffan", "wilaya_id": 16, "wilaya_name": "Alger"},
    {"id": 1631, "name": "Ouled Fayet", "wilaya_id": 16, "wilaya_name": "Alger"},
    {"id": 1902, "name": "Aïn Arnat", "wilaya_id": 19, "wilaya_name": "Sétif"},
    {"id": 501, "name": "Batna", "wilaya_id": 5, "wilaya_name": "Batna"},
    {"id": 3101, "name": "Oran", "wilaya_id": 31, "wilaya_name": "Oran"},
]
WILAYAS = {"Alger", "Sétif", "Batna", "Oran"}
REQUIRED = (
    "order_id",
    "from_wilaya_name",
    "firstname",
    "familyname",
    "contact_phone",
    "address",
    "to_commune_name",
    "to_wilaya_name",
    "product_list",
    "price",
    "do_insurance",
    "declared_value",
    "length",
    "width",
    "height",
    "weight",
    "freeshipping",
    "is_stopdesk",
    "has_exchange",
)
DEFAULT_LIMITS = {"second": 5, "minute": 50, "hour": 1000, "day": 10000}
WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
PDF = label_pdf()
_PARCEL = re.compile(r"^/v1/parcels/(?P<tracking>yal-[A-Z0-9]+)/?$")


@dataclass
class SignedWebhook:
    headers: dict[str, str]
    body: bytes


def error(code: int, message: str) -> FakeResponse:
    return FakeResponse(code, {"error": {"code": code, "message": message}})


class FakeYalidine(FakeServer):
    def __init__(self):
        super().__init__()
        self.api_id = "".join(secrets.choice(string.digits) for _ in range(20))
        self.api_token = secrets.token_urlsafe(48)
        self.webhook_secret = secrets.token_hex(16)
        self.parcels: dict[str, dict] = {}
        self.histories: list[dict] = []
        self.communes = [dict(commune, has_stop_desk=1, is_deliverable=1) for commune in COMMUNES]
        self.limits = dict(DEFAULT_LIMITS)
        self.page_size_cap = 1000
        self._calls: list[float] = []
        self._next: list[FakeResponse] = []
        self._state = threading.Lock()
        self._imports = itertools.count(230)
        self.throttled: list[FakeRequest] = []  # the calls the storm answered with a 429
        self._storm: dict | None = None

    # --- setting up ------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def credentials(self) -> dict[str, str]:
        return {"API_ID": self.api_id, "API_TOKEN": self.api_token}

    def fail_next(self, status: int, body=None, headers: dict | None = None) -> None:
        body = body if body is not None else {"error": {"code": status, "message": "Internal Server Error"}}
        with self._state:
            self._next.append(FakeResponse(status, body, dict(headers or {})))

    def hang_next(self, seconds: float) -> None:
        """The next call is processed (a create does create) and answered ``seconds`` late."""
        with self._state:
            self._next.append(FakeResponse(0, b"", {}, delay=seconds))

    def storm(self, seconds: float, retry_after: int, let_through: int = 5) -> None:
        """For ``seconds`` from the next call on (by ``time.time()``, which a test may travel), every
        call but one in ``let_through`` gets a 429 with ``Retry-After: retry_after`` and changes
        nothing; the first call is refused. Then all is well."""
        with self._state:
            self._storm = {"seconds": seconds, "retry_after": retry_after, "every": let_through}

    def push_status(self, tracking: str, status: str, *, reason: str = "", at: str | None = None) -> dict:
        """Yalidine moves the parcel on: ``last_status`` and a history row."""
        parcel = self.parcels[tracking]
        at = at or datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        parcel.update(last_status=status, date_last_status=at)
        row = {
            "date_status": at,
            "tracking": tracking,
            "status": status,
            "reason": reason,
            "center_id": 190201,
            "center_name": "Centre de Aïn Arnat",
            "wilaya_id": 19,
            "wilaya_name": "Sétif",
            "commune_id": 1902,
            "commune_name": "Aïn Arnat",
        }
        self.histories.append(row)
        return row

    def sign(self, payload: dict, *, secret: str | None = None) -> SignedWebhook:
        body = json.dumps(payload).encode()
        key = (secret if secret is not None else self.webhook_secret).encode()
        signature = hmac.new(key, body, hashlib.sha256).hexdigest()
        return SignedWebhook({"Content-Type": "application/json", "X-YALIDINE-SIGNATURE": signature}, body)

    def webhook(self, kind: str, datas: list[dict], *, secret: str | None = None) -> SignedWebhook:
        events = [
            {
                "event_id": secrets.token_urlsafe(24)[:32],
                "occurred_at": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                "data": data,
            }
            for data in datas
        ]
        return self.sign({"type": kind, "events": events}, secret=secret)

    def status_webhook(
        self, tracking: str, status: str, reason: str | None = None, **kwargs
    ) -> SignedWebhook:
        return self.webhook(
            "parcel_status_updated", [{"tracking": tracking, "status": status, "reason": reason}], **kwargs
        )

    @staticmethod
    def challenge() -> dict[str, str]:
        """The query of Yalidine's subscribe check (``GET <endpoint>?subscribe=…&crc_token=…``)."""
        return {"subscribe": "1", "crc_token": secrets.token_urlsafe(16)}

    # --- looking back ----------------------------------------------------------------------------
    def calls(self, method: str, path: str) -> list[FakeRequest]:
        return [
            r for r in self.requests if r.method == method and r.path.rstrip("/") == f"/v1{path}".rstrip("/")
        ]

    # --- the API ---------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path == "/app/bordereau.php":
            return FakeResponse(200, PDF, {"Content-Type": "application/pdf"})  # public, token in the URL
        if (
            request.headers.get("X-API-ID") != self.api_id
            or request.headers.get("X-API-TOKEN") != self.api_token
        ):
            return error(401, "Unauthorized: invalid X-API-ID or X-API-TOKEN")
        stormed = self._stormed(request)
        if stormed is not None:
            return stormed
        quota = self._quota()
        if quota.status == 429:
            return quota
        with self._state:
            planned = self._next.pop(0) if self._next else None
        if planned is not None and planned.status:
            response = planned
        else:
            response = self._route(request)
            if planned is not None:
                response.delay = planned.delay
        response.headers = {**quota.headers, **response.headers}  # a planned answer's headers win
        return response

    def _stormed(self, request: FakeRequest) -> FakeResponse | None:
        """The storm's 429 for this call, or None (no storm, over, or this call's turn to pass)."""
        now = time.time()
        with self._state:
            storm = self._storm
            if storm is None:
                return None
            storm.setdefault("until", now + storm["seconds"])
            if now >= storm["until"]:
                self._storm = None
                return None
            storm["calls"] = storm.get("calls", 0) + 1
            if storm["calls"] % storm["every"] == 0:
                return None
            self.throttled.append(request)
        headers = {"Retry-After": str(storm["retry_after"])}
        return FakeResponse(429, {"error": {"code": 429, "message": "Too many requests"}}, headers)

    def _quota(self) -> FakeResponse:
        """Counts the call against every window; a 429 (counting nothing) when one is spent."""
        now = time.time()
        with self._state:
            self._calls = [at for at in self._calls if at > now - WINDOW_SECONDS["day"]]
            used = {w: sum(1 for at in self._calls if at > now - s) for w, s in WINDOW_SECONDS.items()}
            spent = [w for w in WINDOW_SECONDS if used[w] >= self.limits[w]]
            if not spent:
                self._calls.append(now)
                used = {w: n + 1 for w, n in used.items()}
            headers = {f"x-{w}-quota-left": str(max(0, self.limits[w] - used[w])) for w in WINDOW_SECONDS}
            if spent:
                window = spent[-1]  # the longest spent window
                oldest = min(at for at in self._calls if at > now - WINDOW_SECONDS[window])
                headers["Retry-After"] = str(int(oldest + WINDOW_SECONDS[window] - now) + 1)
                return FakeResponse(429, {"error": {"code": 429, "message": "Too many requests"}}, headers)
        return FakeResponse(200, b"", headers)

    def _route(self, request: FakeRequest) -> FakeResponse:
        path, method = request.path.rstrip("/") + "/", request.method
        if path == "/v1/parcels/" and method == "POST":
            return self._create(request)
        if path == "/v1/parcels/" and method == "GET":
            return self._parcels(request)
        if path == "/v1/histories/" and method == "GET":
            wanted = self._values(request, "tracking")
            rows = [row for row in self.histories if not wanted or row["tracking"] in wanted]
            return self._paginate(request, sorted(rows, key=lambda row: row["date_status"], reverse=True))
        if path == "/v1/communes/" and method == "GET":
            return self._paginate(request, self.communes)
        match = _PARCEL.match(request.path)
        if match and method == "DELETE":
            parcel = self.parcels.get(match["tracking"])
            deleted = parcel is not None and parcel["last_status"] == "En préparation"
            if deleted:
                del self.parcels[match["tracking"]]
            return FakeResponse(200, [{"tracking": match["tracking"], "deleted": deleted}])
        if match and method == "GET" and match["tracking"] in self.parcels:
            return FakeResponse(200, self.parcels[match["tracking"]])
        return error(404, "Not found")

    def _create(self, request: FakeRequest) -> FakeResponse:
        try:
            parcels = request.json()
        except ValueError:
            return error(400, "The body must be a JSON array of parcels")
        if not isinstance(parcels, list) or not parcels or not all(isinstance(p, dict) for p in parcels):
            return error(400, "The body must be a JSON array of parcels")
        order_ids = [parcel.get("order_id") for parcel in parcels]
        if len(set(order_ids)) != len(order_ids):
            return error(400, "order_id must be unique in the same request")
        for parcel in parcels:
            missing = [name for name in REQUIRED if name not in parcel or parcel[name] in (None, "")]
            if missing:
                return error(400, f"{missing[0]} is required")
            if not 0 <= int(parcel["price"]) <= 150000:
                return error(400, "price must be between 0 and 150000")
        problems = {parcel["order_id"]: self._place_problem(parcel) for parcel in parcels}
        if any(problems.values()):  # all or nothing: nothing is created
            return FakeResponse(
                200,
                {
                    order_id: {
                        "success": False,
                        "order_id": order_id,
                        "tracking": None,
                        "message": problem or "",
                    }
                    for order_id, problem in problems.items()
                },
            )
        import_id = next(self._imports)
        answer = {}
        for parcel in parcels:
            tracking = "yal-" + "".join(
                secrets.choice(string.ascii_uppercase + string.digits) for _ in range(6)
            )
            label = f"{self.base_url}/app/bordereau.php?tracking={tracking}&token={secrets.token_urlsafe(24)}"
            self.parcels[tracking] = {
                **parcel,
                "tracking": tracking,
                "import_id": import_id,
                "delivery_fee": 500,
                "last_status": "En préparation",
                "date_last_status": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                "payment_status": "not-ready",
                "label": label,
            }
            self.push_status(tracking, "En préparation")
            answer[parcel["order_id"]] = {
                "success": True,
                "order_id": parcel["order_id"],
                "tracking": tracking,
                "import_id": import_id,
                "label": label,
                "labels": f"{self.base_url}/app/bordereau.php?import_id={import_id}&token=x",
                "message": "",
            }
        return FakeResponse(200, answer)

    def _place_problem(self, parcel: dict) -> str:
        if parcel["to_wilaya_name"] not in WILAYAS:
            return f"to_wilaya_name: wilaya {parcel['to_wilaya_name']!r} not found"
        if parcel["from_wilaya_name"] not in WILAYAS:
            return f"from_wilaya_name: wilaya {parcel['from_wilaya_name']!r} not found"
        known = {(c["wilaya_name"], c["name"]) for c in self.communes}
        if (parcel["to_wilaya_name"], parcel["to_commune_name"]) not in known:
            return f"to_commune_name: commune {parcel['to_commune_name']!r} not found in this wilaya"
        if parcel["is_stopdesk"] and not parcel.get("stopdesk_id"):
            return "stopdesk_id is required when is_stopdesk is true"
        return ""

    def _parcels(self, request: FakeRequest) -> FakeResponse:
        trackings, order_ids = self._values(request, "tracking"), self._values(request, "order_id")
        rows = [
            parcel
            for parcel in self.parcels.values()
            if (not trackings or parcel["tracking"] in trackings)
            and (not order_ids or parcel["order_id"] in order_ids)
        ]
        fields = self._values(request, "fields")
        if fields:
            rows = [{key: row.get(key) for key in {*fields, "tracking"}} for row in rows]
        return self._paginate(request, rows)

    @staticmethod
    def _values(request: FakeRequest, name: str) -> set[str]:
        raw = (request.query.get(name) or [""])[0]
        return {value for value in raw.split(",") if value}

    def _paginate(self, request: FakeRequest, rows: list) -> FakeResponse:
        page = int((request.query.get("page") or ["1"])[0])
        size = min(int((request.query.get("page_size") or ["100"])[0]), self.page_size_cap)
        start = (page - 1) * size
        url = f"{self.api_url}{request.path.removeprefix('/v1')}"
        return FakeResponse(
            200,
            {
                "has_more": start + size < len(rows),
                "total_data": len(rows),
                "data": rows[start : start + size],
                "links": {"self": f"{url}?page={page}", "next": f"{url}?page={page + 1}"},
            },
        )
