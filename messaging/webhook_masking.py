"""Personal data and account ids out of raw provider webhooks, for whoever may not see them.

Twilio posts forms (``AccountSid``, ``From``, ``To``, ``Body``, ``ProfileName``), WhatsApp Cloud
JSON (the WABA id, ``phone_number_id``, ``display_phone_number``, ``wa_id``, ``from``,
``recipient_id``, the profile name and the text), SendGrid a JSON list of events (``email``,
``ip``), the sandbox JSON (``from``, ``text``). Values are masked by the name of their key, and
then any e-mail address, international phone number or Twilio account id left in any value (a
bounce reason, an error text) by its shape. What ops need to follow a webhook stays readable:
message ids (``MessageSid``, ``wamid``, ``sg_message_id``), statuses, error codes, timestamps,
button payloads, and the last digits of a masked number or id, to tell two apart.

Pure functions (Django only to translate the "characters hidden" note): ``masked_headers``, and
``body_for_display``, which lays a body out for the admin page, masked or not.
"""

import json
import re
from urllib.parse import parse_qsl

from django.utils.translation import ngettext

HIDDEN = "•••"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w+])\+\d[\d ().-]{6,18}\d")
TWILIO_ACCOUNT_SID = re.compile(r"\bAC[0-9a-fA-F]{32}\b")

# Keys (lower case) whose value is masked, whatever its shape, by what it holds.
ACCOUNT_KEYS = frozenset(
    {"accountsid", "messagingservicesid", "phone_number_id", "display_phone_number", "waba_id"}
)
PHONE_KEYS = frozenset(
    {"from", "to", "waid", "wa_id", "recipient_id", "input", "phone", "sender", "recipient"}
)
EMAIL_KEYS = frozenset({"email"})
NAME_KEYS = frozenset({"profilename", "name"})
TEXT_KEYS = frozenset({"body", "text", "caption", "subject"})
NETWORK_KEYS = frozenset({"ip", "useragent"})


def mask_id(value: str) -> str:
    """An account id: its last 4 characters, enough to tell two accounts apart."""
    return f"{HIDDEN}{value[-4:]}" if len(value) > 8 else HIDDEN


def mask_phone(value: str) -> str:
    """A phone number (with Twilio's ``whatsapp:`` prefix if any): its last 2 digits."""
    prefix, _, number = value.rpartition(":")
    digits = re.sub(r"\D", "", number)
    if not digits:
        return value  # an empty or non-phone "to" carries nothing to hide
    return f"{prefix + ':' if prefix else ''}{HIDDEN}{digits[-2:]}"


def mask_text(value: str) -> str:
    if not value:
        return value
    count = len(value)
    return ngettext("[%(count)s character hidden]", "[%(count)s characters hidden]", count) % {"count": count}


def mask_in_text(value: str) -> str:
    """E-mail addresses, international phone numbers and Twilio account ids anywhere in ``value``."""
    value = EMAIL.sub(HIDDEN, value)
    value = TWILIO_ACCOUNT_SID.sub(lambda match: mask_id(match.group()), value)
    return PHONE.sub(lambda match: mask_phone(match.group()), value)


def _mask_value(key: str, value, *, parent: str = ""):
    key = key.lower()
    if isinstance(value, dict):
        return {k: _mask_value(k, v, parent=key) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(key, item, parent=parent) for item in value]
    if not isinstance(value, str | int):
        return value
    text = str(value)
    if key in ACCOUNT_KEYS or (key == "id" and parent == "entry"):  # Meta: entry[].id is the WABA id
        return mask_id(text)
    if key in PHONE_KEYS and not EMAIL.fullmatch(text):
        return mask_phone(text)
    if key in EMAIL_KEYS or key in NETWORK_KEYS or key in NAME_KEYS:
        return HIDDEN if text else text
    if key in TEXT_KEYS:
        return mask_text(text)
    return mask_in_text(text) if isinstance(value, str) else value


def masked_headers(headers: dict) -> dict:
    return {name: mask_in_text(str(value)) for name, value in headers.items()}


def _parse(body: str):
    """("json", data), ("form", pairs) or ("text", body)."""
    try:
        return "json", json.loads(body)
    except (ValueError, RecursionError):
        pass
    pairs = parse_qsl(body, keep_blank_values=True)
    if pairs and "=" in body and not any(char in body for char in " \n{"):
        return "form", pairs
    return "text", body


def body_for_display(body: str, *, masked: bool) -> str:
    """The body laid out for a human: JSON indented, a form one ``key=value`` a line (decoded),
    anything else as it came; with personal data and account ids masked when ``masked``."""
    kind, data = _parse(body or "")
    if kind == "json":
        if masked:
            data = _mask_value("", data)
        return json.dumps(data, indent=2, ensure_ascii=False)
    if kind == "form":
        return "\n".join(f"{key}={_mask_value(key, value) if masked else value}" for key, value in data)
    return mask_in_text(data) if masked else data
