"""Templates: choose one, check its placeholders, render it strictly."""

import string
from decimal import Decimal

from django.db.models import Q

from messaging.events import PLACEHOLDERS
from messaging.models import MessageTemplate

_FORMATTER = string.Formatter()


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


def render_text(text: str, context: dict) -> str:
    names = placeholders_in(text)
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise RenderError(f"unknown placeholder(s): {', '.join(sorted(unknown))}")
    missing = sorted(name for name in names if context.get(name) in (None, ""))
    if missing:
        raise RenderError(f"no value for: {', '.join(missing)}")
    return text.format_map({name: context[name] for name in names})


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
