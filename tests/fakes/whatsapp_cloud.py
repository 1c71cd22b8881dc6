"""A loopback fake of Meta's WhatsApp Cloud API (Graph ``/messages``) and of its signed webhooks.

It checks what a real Graph API checks first: the Bearer token, the path (API version and phone
number id) and the message's JSON shape, and answers with Meta's documented success body or Graph
error envelope (providers.md §2.1, §2.2, §2.6). It also builds status and inbound webhook payloads
shaped like providers.md §2.3/§2.4 and signs them as Meta does (``X-Hub-Signature-256``, HMAC-SHA256
of the raw body with the app secret).

    with WhatsAppCloudFake() as fake:
        fake.fail_for("+212612345678", 131026)      # every send to that number
        fake.fail_next(130429)                      # the next send, whoever it is for
        ... send ...
        wamid = fake.sent[-1]["wamid"]
        fake.post_signed(url, fake.status_payload(wamid, "delivered"), client=client)
"""

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections import deque

import requests

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

# Graph errors the fake can answer with: code → (HTTP status, type, message, details).
GRAPH_ERRORS: dict[int, tuple[int, str, str, str]] = {
    131026: (400, "OAuthException", "(#131026) Message Undeliverable.", "Message Undeliverable."),
    131021: (400, "OAuthException", "(#131021) Recipient cannot be sender.", ""),
    131030: (
        400,
        "OAuthException",
        "(#131030) Recipient phone number not in allowed list",
        "Recipient phone number not in allowed list: "
        "Add recipient phone number to recipient list and try again.",
    ),
    137000: (400, "OAuthException", "(#137000) Identity key mismatch", ""),
    131050: (
        400,
        "OAuthException",
        "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business",
        "",
    ),
    131047: (
        400,
        "OAuthException",
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    ),
    131049: (
        400,
        "OAuthException",
        "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
        "",
    ),
    132000: (
        400,
        "OAuthException",
        "(#132000) Number of parameters does not match the expected number of params",
        "body: number of localizable_params (1) does not match the expected number of params (2)",
    ),
    132001: (
        404,
        "OAuthException",
        "(#132001) Template name does not exist in the translation",
        "template name (order_update) does not exist in fr",
    ),
    131009: (400, "OAuthException", "(#131009) Parameter value is not valid", ""),
    100: (400, "OAuthException", "(#100) Invalid parameter", ""),
    190: (401, "OAuthException", "Error validating access token: Session has expired.", ""),
    131031: (400, "OAuthException", "(#131031) Business Account locked", ""),
    130429: (
        400,
        "OAuthException",
        "(#130429) Rate limit hit",
        "Cloud API message throughput has been reached.",
    ),
    131056: (
        400,
        "OAuthException",
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "",
    ),
    80007: (
        400,
        "OAuthException",
        "(#80007) There have been too many calls to this WhatsApp Business account.",
        "",
    ),
    4: (400, "OAuthException", "(#4) Application request limit reached", ""),
    131048: (400, "OAuthException", "(#131048) Spam rate limit hit", ""),
    1: (500, "OAuthException", "An unknown error occurred", ""),
    2: (503, "OAuthException", "Service temporarily unavailable", ""),
    131000: (500, "OAuthException", "(#131000) Something went wrong", ""),
    131016: (503, "OAuthException", "(#131016) Service unavailable", ""),
}
_DIGITS = re.compile(r"^\d{6,15}$")


def graph_error(code: int, *, status: int | None = None) -> FakeResponse:
    http_status, error_type, message, details = GRAPH_ERRORS.get(
        code, (400, "OAuthException", f"(#{code}) Error", "")
    )
    trace_id = f"A{secrets.token_hex(8)}"
    error = {
        "message": message,
        "type": error_type,
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or message},
        "fbtrace_id": trace_id,
    }
    if code in (131000, 131016, 1, 2, 130429):
        error["is_transient"] = True
    return FakeResponse(
        status=status or http_status, body={"error": error}, headers={"x-fb-trace-id": trace_id}
    )


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class WhatsAppCloudFake(FakeServer):
    def __init__(
        self,
        *,
        access_token: str = "EAAG-test-access-token",  # noqa: S107 - a fake's test credential
        app_secret: str = "test-app-secret",  # noqa: S107 - a fake's test credential
        phone_number_id: str = "106540352242922",
        api_version: str = "v21.0",
        display_phone_number: str = "212522000000",
        waba_id: str = "102290129340398",
    ):
        super().__init__()
        self.access_token = access_token
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.api_version = api_version
        self.display_phone_number = display_phone_number
        self.waba_id = waba_id
        self.sent: list[dict] = []  # accepted message bodies, each with the "wamid" it got
        self.refused: list[dict] = []  # bodies of sends answered with an error
        self._fail_for: dict[str, int] = {}
        self._next: deque[FakeResponse | float] = deque()  # scripted answers, or a delay
        self._by_wamid: dict[str, dict] = {}
        self._counter = itertools.count(1)
        self._state = threading.Lock()

    # --- telling it what to do ---
    def fail_for(self, to: str, code: int) -> None:
        """Every send to ``to`` (E.164 with or without "+") fails with Graph error ``code``."""
        self._fail_for[to.lstrip("+")] = code

    def fail_next(self, code: int, *, status: int | None = None) -> None:
        """The next send (whoever it is for) fails with Graph error ``code``."""
        self._next.append(graph_error(code, status=status))

    def answer_next(self, response: FakeResponse) -> None:
        """The next send gets exactly ``response`` (e.g. an HTML 502 page from a proxy)."""
        self._next.append(response)

    def delay_next(self, seconds: float) -> None:
        """The next send is accepted but answered only after ``seconds`` (to provoke a read timeout)."""
        self._next.append(float(seconds))

    # --- the Graph API ---
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return graph_error(190)
        if request.method != "POST" or request.path != f"/{self.api_version}/{self.phone_number_id}/messages":
            return FakeResponse(
                status=400,
                body={
                    "error": {
                        "message": f"Unsupported post request. Object '{request.path}' does not exist",
                        "type": "GraphMethodException",
                        "code": 100,
                        "error_subcode": 33,
                        "fbtrace_id": "AfakeTrace",
                    }
                },
            )
        try:
            body = request.json()
        except ValueError:
            return graph_error(100)
        problem = shape_problem(body)
        if problem:
            self.refused.append(body)
            response = graph_error(100)
            response.body["error"]["error_data"]["details"] = problem
            return response
        with self._state:
            scripted = self._next.popleft() if self._next else None
            code = self._fail_for.get(body["to"])
        delay = 0.0
        if isinstance(scripted, float):
            delay = scripted
        elif scripted is not None:
            self.refused.append(body)
            return scripted
        elif code is not None:
            self.refused.append(body)
            return graph_error(code)
        wamid = self._new_wamid()
        with self._state:
            self.sent.append({**body, "wamid": wamid})
            self._by_wamid[wamid] = body
        return FakeResponse(
            status=200,
            delay=delay,
            body={
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            },
        )

    def _new_wamid(self) -> str:
        # Real wamids are base64 of a protobuf; only their prefix and opacity matter here.
        return f"wamid.HBgM{secrets.token_hex(12).upper()}{next(self._counter):04d}"

    # --- webhooks Meta would post ---
    def _envelope(self, value: dict) -> dict:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display_phone_number,
                                    "phone_number_id": self.phone_number_id,
                                },
                                **value,
                            },
                        }
                    ],
                }
            ],
        }

    def status_payload(
        self, wamid: str, status: str, error_code: int | None = None, *, timestamp: int | None = None
    ) -> dict:
        """A statuses webhook for ``wamid`` (sent | delivered | read | failed), as in providers.md §2.3."""
        sent = self._by_wamid.get(wamid, {})
        item = {
            "id": wamid,
            "status": status,
            "timestamp": str(timestamp or int(time.time())),
            "recipient_id": sent.get("to", "212600000000"),
        }
        if sent.get("biz_opaque_callback_data"):
            item["biz_opaque_callback_data"] = sent["biz_opaque_callback_data"]
        if status in ("sent", "delivered", "read"):
            item["conversation"] = {
                "id": secrets.token_hex(16),
                "expiration_timestamp": str(int(time.time()) + 86400),
                "origin": {"type": "utility"},
            }
            item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
        if status == "failed":
            _, _, message, details = GRAPH_ERRORS.get(error_code or 131000, (0, "", "Error", ""))
            item["errors"] = [
                {
                    "code": error_code or 131000,
                    "title": message.split(") ", 1)[-1],
                    "message": message.split(") ", 1)[-1],
                    "error_data": {"details": details or message},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        return self._envelope({"statuses": [item]})

    def _inbound(self, from_: str, message: dict, *, profile_name: str = "Client") -> dict:
        wa_id = from_.lstrip("+")
        message = {
            "from": wa_id,
            "id": f"wamid.IN{secrets.token_hex(14).upper()}",
            "timestamp": str(int(time.time())),
            **message,
        }
        return self._envelope(
            {"contacts": [{"profile": {"name": profile_name}, "wa_id": wa_id}], "messages": [message]}
        )

    def button_reply_payload(self, from_: str, id: str, title: str, context_wamid: str = "") -> dict:
        """The customer tapped an interactive reply button (providers.md §2.4)."""
        message = {
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": id, "title": title}},
        }
        if context_wamid:
            message["context"] = {"from": self.display_phone_number, "id": context_wamid}
        return self._inbound(from_, message)

    def quick_reply_payload(self, from_: str, payload: str, text: str, context_wamid: str = "") -> dict:
        """The customer tapped a template's quick-reply button (providers.md §2.4)."""
        message = {"type": "button", "button": {"payload": payload, "text": text}}
        if context_wamid:
            message["context"] = {"from": self.display_phone_number, "id": context_wamid}
        return self._inbound(from_, message)

    def text_payload(self, from_: str, body: str) -> dict:
        return self._inbound(from_, {"type": "text", "text": {"body": body}})

    # --- signing and posting ---
    def signed(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers Meta would send: compact JSON with non-ASCII escaped, as Meta does."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(self.app_secret, body)}

    def post_signed(self, url: str, payload: dict, *, client=None, secret: str | None = None):
        """POST ``payload`` signed to ``url``: through a Django test ``client``, else over HTTP."""
        body, headers = self.signed(payload)
        if secret is not None:
            headers["X-Hub-Signature-256"] = sign(secret, body)
        if client is not None:
            return client.post(
                url,
                data=body,
                content_type="application/json",
                headers={"X-Hub-Signature-256": headers["X-Hub-Signature-256"]},
            )
        return requests.post(url, data=body, headers=headers, timeout=10)


def shape_problem(body) -> str:
    """What a Graph API would refuse in a /messages body; empty when it is well formed."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if not _DIGITS.match(str(body.get("to", ""))):
        return "to must be the phone number in digits, without +"
    kind = body.get("type", "text")
    if kind == "text":
        text = (body.get("text") or {}).get("body")
        return (
            "" if isinstance(text, str) and 0 < len(text) <= 4096 else "text.body must be 1-4096 characters"
        )
    if kind == "template":
        return _template_problem(body.get("template"))
    if kind == "interactive":
        return _interactive_problem(body.get("interactive"))
    return f"unsupported type {kind!r}"


def _template_problem(template) -> str:
    if not isinstance(template, dict) or not template.get("name"):
        return "template.name is required"
    if not (template.get("language") or {}).get("code"):
        return "template.language.code is required"
    for component in template.get("components") or []:
        kind = component.get("type")
        parameters = component.get("parameters") or []
        if kind == "body":
            for parameter in parameters:
                text = parameter.get("text")
                if parameter.get("type") != "text" or not isinstance(text, str) or not text:
                    return "body parameters must be non-empty text"
                if "\n" in text or "\t" in text or "     " in text:
                    return "body parameters cannot hold new lines, tabs or more than 4 spaces in a row"
        elif kind == "button":
            if component.get("sub_type") != "quick_reply" or not str(component.get("index", "")).isdigit():
                return "button components need sub_type quick_reply and a numeric index"
            if [p.get("type") for p in parameters] != ["payload"] or not parameters[0].get("payload"):
                return "a quick reply button takes one payload parameter"
        else:
            return f"unexpected component type {kind!r}"
    return ""


def _interactive_problem(interactive) -> str:
    if not isinstance(interactive, dict) or interactive.get("type") != "button":
        return "interactive.type must be button"
    text = (interactive.get("body") or {}).get("text")
    if not isinstance(text, str) or not 0 < len(text) <= 1024:
        return "interactive.body.text must be 1-1024 characters"
    buttons = (interactive.get("action") or {}).get("buttons") or []
    if not 1 <= len(buttons) <= 3:
        return "interactive buttons must be 1 to 3"
    titles = []
    for button in buttons:
        reply = button.get("reply") or {}
        if button.get("type") != "reply" or not 0 < len(reply.get("id", "")) <= 256:
            return "each button is a reply with an id of 1-256 characters"
        if not 0 < len(reply.get("title", "")) <= 20:
            return "button titles must be 1-20 characters"
        titles.append(reply["title"])
    return "" if len(set(titles)) == len(titles) else "button titles must be unique"
