"""Templates: choose one, check its placeholders, render it strictly."""

import re
import string
from decimal import Decimal

from django.db.models import Q
from django.utils.translation import get_language_info

from messaging.events import PLACEHOLDERS
from messaging.models import MessageTemplate

_FORMATTER = string.Formatter()
# First strong isolate … pop directional isolate (Unicode bidi): what sits between them keeps its
# own direction and does not reorder the text around it.
FSI, PDI = "\u2068", "\u2069"
_ISOLATED_PLACEHOLDER = re.compile(FSI + r"(\{[a-z_]+\})" + PDI)


class RenderError(Exception):
    """A template could not be rendered in full; nothing half-rendered is ever sent."""


def placeholders_in(text: str) -> set[str]:
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in _FORMATTER.parse(text) if name is not None]
    except ValueError as exc:  # e.g. a lone "{"
        raise RenderError(f"the text is not a valid template: {exc}") from exc
    # "{cod_amount:d}" or "{x!r}" would raise something other than RenderError at send time.
    decorated = sorted(name for name, spec, conv in fields if spec or conv)
    if decorated:
        raise RenderError(f"placeholders take no format or conversion: {', '.join(decorated)}")
    return {name for name, _, _ in fields}


def unknown_placeholders(*texts: str) -> set[str]:
    found: set[str] = set()
    for text in texts:
        found |= placeholders_in(text)
    return found - set(PLACEHOLDERS)


def render_text(text: str, context: dict, language: str | None = None) -> str:
    """``text`` with its placeholders filled from ``context``; RenderError if any has no value.

    In a right-to-left language (Arabic) each value is isolated (FSI … PDI): an order number such
    as ``#1048``, an amount such as ``1,249.00 MAD``, a link or a Latin name then reads in its own
    order inside the Arabic sentence instead of being reordered around it. Stores' own templates
    get this too, without having to type invisible characters.
    """
    names = placeholders_in(text)
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise RenderError(f"unknown placeholder(s): {', '.join(sorted(unknown))}")
    missing = sorted(name for name in names if context.get(name) in (None, ""))
    if missing:
        raise RenderError(f"no value for: {', '.join(missing)}")
    values = {name: context[name] for name in names}
    if language and _is_right_to_left(language):
        values = {name: f"{FSI}{value}{PDI}" for name, value in values.items()}
        # A value the template already isolates (FSI{name}PDI) is not wrapped twice.
        text = _ISOLATED_PLACEHOLDER.sub(r"\1", text)
    return text.format_map(values)


def _is_right_to_left(language: str) -> bool:
    try:
        return get_language_info(language)["bidi"]
    except KeyError:  # a language Django does not know: left to right, as it would show it
        return False


def format_money(amount: Decimal, currency: str, language: str) -> str:
    text = f"{amount:,.2f}"
    if language == "fr":
        # 1 249,00 MAD: French groups with a narrow no-break space and uses a decimal comma.
        text = text.replace(",", "\u202f").replace(".", ",")
    return f"{text} {currency}"


def template_for(store, event: str, channel: str, language: str) -> MessageTemplate | None:
    """The store's own template, else the default; in the customer's language, else French, else any."""
    rows = MessageTemplate.objects.filter(
        Q(store=store) | Q(store__isnull=True), event=event, channel=channel
    )
    return template_choose(rows, language)


def template_choose(candidates, language: str) -> MessageTemplate | None:
    """``template_for``'s choice among one store's and the default templates of one event and channel."""
    # The store's own templates first, then the defaults.
    candidates = sorted(candidates, key=lambda template: template.store_id is None)
    for wanted in (language, "fr", "en"):
        for template in candidates:
            if template.language == wanted:
                return template
    return candidates[0] if candidates else None


def order_context(order, language: str, customer=None, *, shipment: dict | None = None) -> dict:
    """Every placeholder's value for ``order``; None where the order does not know it yet.

    ``shipment``: the payload of the order's latest "shipped" event when the caller has it.
    """
    if shipment is None:
        shipment = order_shipment(order)
    items = ", ".join(f"{item.quantity} × {item.title}" for item in order.items.all())
    return {
        "customer_name": (customer or order.customer).name,
        "order_number": order.number,
        "items": items or None,
        "cod_amount": format_money(order.cod_amount, order.currency, language),
        "total_amount": format_money(order.total_amount, order.currency, language),
        "carrier": shipment.get("carrier"),
        "tracking_link": shipment.get("tracking_url"),
        "expected_date": shipment.get("expected_date"),
        "store_name": order.store.name,
        "payment_link": order.store.payment_link_for(order.number) or None,
    }


def order_shipment(order) -> dict:
    shipped = order.events.filter(type="shipped").order_by("-id").first()
    return shipped.payload if shipped else {}
