"""Customer replies: answer a pending COD confirmation, record opt-outs, and queue the rest."""

import logging
import re
import unicodedata

from django.db import transaction

from messaging.models import Channel, Consent, InboundMessage
from messaging.providers import InboundReply
from messaging.services.consent import consent_record
from orders.errors import OrderTransitionError
from orders.models import Customer, Order, OrderEvent
from orders.services import order_transition
from orders.transitions import OrderStatus

logger = logging.getLogger(__name__)

# Twilio's default opt-out keywords, then French and Arabic ones customers here use.
OPT_OUT_WORDS = {
    "stop",
    "stopall",
    "unsubscribe",
    "end",
    "quit",
    "revoke",
    "optout",
    "cancel",
    "arret",
    "arreter",
    "desabonner",
    "desinscrire",
    "توقف",
    "ايقاف",
    "إيقاف",
    "الغاء الاشتراك",
}
OPT_IN_WORDS = {"start", "unstop", "yes"}  # Twilio lifts a block on these
CONFIRM_WORDS = {
    "1",
    "yes",
    "y",
    "ok",
    "okay",
    "confirm",
    "confirmed",
    "oui",
    "o",
    "confirmer",
    "je confirme",
    "confirme",
    "d'accord",
    "dac",
    "نعم",
    "اكد",
    "أكد",
    "تأكيد",
    "موافق",
    "اه",
    "آه",
    "واخا",
    # Darija in Latin letters, as typed on phones
    "wakha",
    "wakhe",
    "wakka",
    "waxa",
    "ah",
    "aah",
    "iyeh",
    "ayeh",
    "eyh",
    "na3am",
    "n3am",
    "mwafe9",
    "safi",
}
CANCEL_WORDS = {
    "2",
    "no",
    "n",
    "nope",
    "annuler",
    "annule",
    "non",
    "je annule",
    "j'annule",
    "لا",
    "الغاء",
    "إلغاء",
    "الغي",
    "ما بغيتش",
    "مابغيتش",
    "la",
    "lla",
    "laa",
    "mabghitch",
    "ma bghitch",
    "bghitch",
    "mabghitsh",
    "nn",
}
_PUNCTUATION = re.compile(r"[\s!.?,;:()\"'`*_~-]+")


def normalize_reply(text: str) -> str:
    """Lower-case, strip accents, emoji and punctuation: 'Oui !' → 'oui', 'ARRÊT' → 'arret'."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    kept = "".join(c for c in decomposed if not unicodedata.combining(c) or "\u0600" <= c <= "\u06ff")
    kept = "".join(c for c in kept if unicodedata.category(c)[0] in "LNZ" or c == "'")
    return _PUNCTUATION.sub(" ", kept).strip()


def reply_intent(reply: InboundReply, *, opted_out: bool) -> str:
    if reply.button_payload:
        head = reply.button_payload.split(":", 1)[0].lower()
        if head in (InboundMessage.Intent.CONFIRM, InboundMessage.Intent.CANCEL):
            return head
    if reply.opt_out_type:
        kind = reply.opt_out_type.upper()
        if kind == "STOP":
            return InboundMessage.Intent.OPT_OUT
        if kind == "START":
            return InboundMessage.Intent.OPT_IN
    text = normalize_reply(reply.text or "")
    if opted_out and text in OPT_IN_WORDS:
        return InboundMessage.Intent.OPT_IN
    # "cancel" is an opt-out keyword on SMS (carriers block on it), a plain answer elsewhere.
    if text in OPT_OUT_WORDS and not (text == "cancel" and reply.channel != Channel.SMS):
        return InboundMessage.Intent.OPT_OUT
    if text in CONFIRM_WORDS:
        return InboundMessage.Intent.CONFIRM
    if text in CANCEL_WORDS or text == "cancel":
        return InboundMessage.Intent.CANCEL
    return InboundMessage.Intent.OTHER


def customer_for_reply(store, reply: InboundReply) -> Customer | None:
    field = "email" if reply.channel == Channel.EMAIL else "phone"
    return Customer.objects.filter(store=store, **{field: reply.sender}).order_by("-id").first()


def order_awaiting_answer(customer: Customer, reply: InboundReply) -> Order | None:
    """The order the customer answers: the button's own order, else their latest awaiting one."""
    awaiting = Order.objects.filter(customer=customer, status=OrderStatus.AWAITING_CONFIRMATION)
    _, _, order_id = reply.button_payload.partition(":")
    if order_id.isdigit():
        return awaiting.filter(pk=int(order_id)).first()
    return awaiting.order_by("-placed_at", "-id").first()


def inbound_reply_handle(store, provider: str, reply: InboundReply, *, webhook=None) -> InboundMessage:
    """Record a reply and act on it. Repeats of one provider message are handled once."""
    if reply.provider_message_id:
        seen = InboundMessage.objects.filter(provider=provider, provider_message_id=reply.provider_message_id)
        if seen.exists():
            return seen.first()
    customer = customer_for_reply(store, reply)
    consent = customer.consents.filter(channel=reply.channel).first() if customer else None
    intent = reply_intent(reply, opted_out=bool(consent and consent.status == Consent.Status.OPTED_OUT))
    order = order_awaiting_answer(customer, reply) if customer else None
    with transaction.atomic():
        inbound = InboundMessage.objects.create(
            customer=customer,
            order=order or (customer.orders.order_by("-placed_at", "-id").first() if customer else None),
            webhook=webhook,
            channel=reply.channel,
            provider=provider,
            sender=reply.sender,
            provider_message_id=reply.provider_message_id,
            text=reply.text[:4000],
            button_payload=reply.button_payload,
            intent=intent,
        )
        inbound.handled = _act(inbound, customer, order, intent)
        inbound.save(update_fields=["handled"])
    logger.info("inbound reply inbound_id=%s intent=%s handled=%s", inbound.pk, intent, inbound.handled)
    return inbound


def _act(inbound: InboundMessage, customer, order, intent: str) -> bool:
    if customer is None:
        return False
    if intent in (InboundMessage.Intent.OPT_OUT, InboundMessage.Intent.OPT_IN):
        status = (
            Consent.Status.OPTED_OUT if intent == InboundMessage.Intent.OPT_OUT else Consent.Status.OPTED_IN
        )
        consent_record(
            customer,
            inbound.channel,
            status,
            source=Consent.Source.CUSTOMER_REPLY,
            evidence={"inbound_id": inbound.pk, "text": inbound.text[:200]},
        )
        return True
    if intent not in (InboundMessage.Intent.CONFIRM, InboundMessage.Intent.CANCEL) or order is None:
        return False  # an agent reads it in the inbox
    try:
        # The resulting status change tells the customer (order_confirmed / order_cancelled).
        order_transition(
            order,
            "confirm" if intent == InboundMessage.Intent.CONFIRM else "cancel",
            source=OrderEvent.Source.CUSTOMER,
            reason=f"customer replied on {inbound.channel}",
            payload={"inbound_id": inbound.pk},
            idempotency_key=f"reply:{inbound.provider}:{inbound.provider_message_id or inbound.pk}",
        )
    except OrderTransitionError:
        return False
    return True
