"""Customer replies: answer a pending COD confirmation, record opt-outs, and have every reply answered.

A reply is read the way customers here write: French, Arabic, English and Moroccan Darija in
Latin letters (``wakha``, ``mabghitch``) or Arabic script (``واخا``), with any case, accents,
punctuation, emoji and stretched letters (``ouiii``). Every word of the reply must be understood
and all of them must agree; anything else waits in the inbox for an agent, because a wrong
automatic answer (cancelling an order the customer wanted) costs more than a human look.

What a reply then does: a confirm or cancel of an order awaiting it moves the order. One that
comes once the order no longer awaits it (Cancel tapped after confirming) changes nothing; the
store's rules answer it with what became of the order (``customer_replied`` with ``late``). Anything
else, and a late answer no rule takes up, waits in the inbox for an agent, and the rules
acknowledge it. All of it happens in the reply's transaction: the answer's outbox rows commit with
the reply, and the reply's ``outcome`` says what was done.
"""

import logging
import re
import unicodedata
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, Q, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.models import Channel, Consent, InboundMessage, Message
from messaging.providers import InboundReply
from messaging.services.consent import consent_record
from messaging.signals import customer_replied
from orders.errors import OrderTransitionError
from orders.models import Customer, Order, OrderEvent
from orders.phones import normalize_phone
from orders.services import order_transition
from orders.transitions import OrderStatus

logger = logging.getLogger(__name__)
Intent = InboundMessage.Intent

# --- What the words mean ----------------------------------------------------------------------
# Written as people type them; every entry goes through normalize_reply() below, so accents,
# apostrophes and hamza forms need not be listed twice.

# Twilio's default opt-out keywords (carriers block on them, CANCEL included, on SMS), then the
# French and Arabic ones customers here use.
OPT_OUT_PHRASES = (
    "stop", "stopall", "stop all", "unsubscribe", "end", "quit", "revoke", "optout", "opt out", "cancel",
    "arrêt", "arrête", "arrêter", "désabonner", "désabonnement", "se désabonner", "désinscrire",
    "توقف", "إيقاف", "أوقف", "الغاء الاشتراك", "إلغاء الاشتراك",
)  # fmt: skip
# Twilio lifts a STOP block on these; YES-like words only count while the customer is opted out.
OPT_IN_PHRASES = ("start", "unstop", "démarrer")
OPT_IN_WHEN_OPTED_OUT = ("yes", "oui", "نعم")
CONFIRM_PHRASES = (
    # digits and English
    "1", "yes", "y", "yep", "yeah", "ok", "okay", "k", "confirm", "confirmed", "i confirm",
    # French
    "oui", "o", "ouais", "confirmer", "confirme", "confirmé", "confirmée", "je confirme",
    "d'accord", "dac", "dacc", "c'est bon", "bien sûr", "parfait", "valider", "je valide",
    # Arabic script, standard and Darija
    "نعم", "اكد", "أكد", "أؤكد", "تأكيد", "تاكيد", "موافق", "اه", "آه", "ايه", "إيه", "اييه",
    "واخا", "وخا", "بغيت", "باغي", "باغية", "صافي", "مزيان", "أكيد",
    # Darija in Latin letters, as typed on phones (3 = ع, 9 = ق, 7 = ح)
    "wakha", "wakhha", "wakhkha", "wkha", "wakka", "waxa", "wah", "waah", "ah", "aah", "iyeh",
    "iyah", "iyeh", "ih", "ayeh", "eyh", "na3am", "n3am", "naam", "mwafe9", "mwafeq", "safi",
    "bghit", "bghitha", "bghito", "bghitou", "baghi", "baghya", "akid", "2akid", "mzyan",
)  # fmt: skip
CANCEL_PHRASES = (
    # digits and English
    "2", "no", "n", "nope", "nah", "cancel",
    # French
    "non", "nan", "annuler", "annule", "annulé", "annulée", "annulez", "j'annule", "je annule",
    "annulation", "je veux annuler",
    # Arabic script, standard and Darija
    "لا", "لاء", "لالا", "الغاء", "إلغاء", "الغي", "ألغي", "ما بغيتش", "مابغيتش", "ما بغيتوش",
    "مابغيتوش", "ماشي", "لا ما بغيتش", "بلاش",
    # Darija in Latin letters
    "la", "laa", "lla", "lala", "mabghitch", "ma bghitch", "mabghitsh", "ma bghitsh", "mabghitich",
    "mabghitoch", "ma bghitoch", "bghitch", "machi", "mashi", "nn",
)  # fmt: skip
# Words that change nothing about the answer ("oui merci", "salam, wakha", "je confirme ma commande").
NEUTRAL_PHRASES = (
    "la commande", "ma commande", "commande", "the order", "my order", "order", "الطلب", "طلبي",
    "الطلبية", "merci", "merci beaucoup", "mrc", "thanks", "thank you", "thx", "please", "svp", "stp",
    "s'il vous plaît", "bonjour", "bonsoir", "salut", "hello", "hi", "salam", "slm", "salam alaykoum",
    "salam alaykom", "choukran", "chokran", "shukran", "chukran", "baraka allah fik", "شكرا",
    "شكرا جزيلا", "السلام عليكم", "سلام", "مرحبا", "بارك الله فيك",
)  # fmt: skip
# Emoji that answer on their own; read as the word in the same slot.
EMOJI_WORDS = {
    "👍": "ok", "👌": "ok", "✅": "ok", "✔": "ok", "☑": "ok", "🆗": "ok",
    "👎": "no", "❌": "no", "✖": "no", "🚫": "no",
}  # fmt: skip
_LONGEST_PHRASE = 4

# --- Reading a reply --------------------------------------------------------------------------
_APOSTROPHES_AND_SPACES = re.compile(r"[\s'’‘`´ʼ_\-]+")
_STRETCHED = re.compile(r"(.)\1{2,}")  # "ouiii" → "oui", "لااا" → "لا"
_ARABIC_LETTER_FORMS = str.maketrans({"ى": "ي", "ی": "ي", "ة": "ه", "ک": "ك", "ـ": ""})


def normalize_reply(text: str) -> str:
    """Lower-case words without accents, emoji or punctuation: 'Oui !' → 'oui', 'ARRÊT' → 'arret'.

    Arabic loses its short vowels, hamza seats and tatweel (``إيقاف`` → ``ايقاف``), and
    Arabic-Indic digits become ASCII (``١`` → ``1``), so spellings that differ only there match.
    """
    text = "".join(f" {EMOJI_WORDS[c]} " if c in EMOJI_WORDS else c for c in text)
    decomposed = unicodedata.normalize("NFKD", text.casefold()).translate(_ARABIC_LETTER_FORMS)
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category[0] == "N" and unicodedata.decimal(char, None) is not None:
            kept.append(str(unicodedata.decimal(char)))
        elif category[0] in "LN":
            kept.append(char)
        elif category[0] in "ZP" or char in "'’`´":
            kept.append(" ")  # punctuation separates words; marks and symbols just go
    words = _APOSTROPHES_AND_SPACES.sub(" ", "".join(kept)).strip()
    return _STRETCHED.sub(r"\1", words)


def _table(phrases, meaning: str) -> dict[str, str]:
    return {normalize_reply(phrase): meaning for phrase in phrases}


NEUTRAL = "neutral"
_MEANINGS: dict[str, str] = {
    **_table(NEUTRAL_PHRASES, NEUTRAL),
    **_table(CANCEL_PHRASES, Intent.CANCEL),
    **_table(CONFIRM_PHRASES, Intent.CONFIRM),
    **_table(OPT_IN_PHRASES, Intent.OPT_IN),
    **_table(OPT_OUT_PHRASES, Intent.OPT_OUT),
}
_OPT_IN_WHEN_OPTED_OUT = set(_table(OPT_IN_WHEN_OPTED_OUT, Intent.OPT_IN))
_CANCEL_KEYWORD = normalize_reply("cancel")


def _meanings_of(words: str, *, channel: str, opted_out: bool) -> list[str] | None:
    """The meaning of each phrase in ``words``, longest phrases first; None if one is unknown."""
    tokens, found, start = words.split(), [], 0
    while start < len(tokens):
        for length in range(min(_LONGEST_PHRASE, len(tokens) - start), 0, -1):
            phrase = " ".join(tokens[start : start + length])
            if phrase in _MEANINGS:
                break
        else:
            return None
        meaning = _MEANINGS[phrase]
        if phrase == _CANCEL_KEYWORD:
            # CANCEL alone is an opt-out keyword on SMS (carriers block on it); "cancel my order",
            # or CANCEL on another channel, answers the order.
            meaning = Intent.OPT_OUT if channel == Channel.SMS and len(tokens) == 1 else Intent.CANCEL
        elif opted_out and phrase in _OPT_IN_WHEN_OPTED_OUT:
            meaning = Intent.OPT_IN
        found.append(meaning)
        start += length
    return found


def text_intent(text: str, *, channel: str, opted_out: bool = False) -> str:
    meanings = _meanings_of(normalize_reply(text or ""), channel=channel, opted_out=opted_out)
    if not meanings:
        return Intent.OTHER
    intents = set(meanings) - {NEUTRAL}
    if Intent.OPT_OUT in intents:
        return Intent.OPT_OUT  # "non, stop": a stop word is always honoured
    return intents.pop() if len(intents) == 1 else Intent.OTHER  # "oui non" needs a human


def reply_intent(reply: InboundReply, *, opted_out: bool) -> str:
    if reply.button_payload:
        head = reply.button_payload.split(":", 1)[0].strip().lower()
        if head in (Intent.CONFIRM, Intent.CANCEL):
            return head
    if reply.opt_out_type:
        kind = reply.opt_out_type.strip().upper()
        if kind == "STOP":
            return Intent.OPT_OUT
        if kind == "START":
            return Intent.OPT_IN
    return text_intent(reply.text, channel=reply.channel, opted_out=opted_out)


# --- Who answered, about which order ----------------------------------------------------------
# A reply that points at no order (typed text, not an answer to one of our messages) is about the
# order awaiting an answer, else about the customer's order that changed last, if that was lately.
RECENT_ORDER = timedelta(days=14)


def customer_for_reply(store, reply: InboundReply) -> Customer | None:
    customers = Customer.objects.filter(store=store)
    if reply.channel == Channel.EMAIL:
        return customers.filter(email__iexact=reply.sender.strip()).order_by("-id").first()
    raw = reply.sender.strip().removeprefix("whatsapp:")
    if raw.isdigit():
        raw = f"+{raw}"  # WhatsApp ids are the number without its "+"
    phone = normalize_phone(raw, store.default_phone_region)
    return customers.filter(phone=phone).first() if phone else None


def message_replied_to(provider: str, reply: InboundReply) -> Message | None:
    if not reply.in_reply_to_provider_id:
        return None
    return Message.objects.filter(
        provider=provider, provider_message_id=reply.in_reply_to_provider_id
    ).first()


def order_replied_about(customer: Customer, reply: InboundReply, replied_to: Message | None = None):
    """The order the customer writes about: the button's own order, else the order of the message
    they answered, whatever its status now; else the one whose confirmation was asked last while it
    awaits the answer; else their order that changed last, within ``RECENT_ORDER``. None if none."""
    orders = Order.objects.filter(customer=customer)
    _, _, order_id = reply.button_payload.partition(":")
    if order_id.strip().isdigit():
        return orders.filter(pk=int(order_id)).first()
    if replied_to is not None and replied_to.customer_id == customer.pk:
        return orders.filter(pk=replied_to.order_id).first()
    awaiting = Q(status=OrderStatus.AWAITING_CONFIRMATION)
    candidates = orders.alias(last_change=Coalesce("status_changed_at", "placed_at")).filter(
        awaiting | Q(last_change__gte=timezone.now() - RECENT_ORDER)
    )
    awaiting_first = Case(When(awaiting, then=0), default=1)
    return candidates.order_by(awaiting_first, "-last_change", "-id").first()


# --- Handling ---------------------------------------------------------------------------------
def inbound_reply_handle(store, provider: str, reply: InboundReply, *, webhook=None) -> InboundMessage:
    """Record a reply and act on it. Repeats of one provider message are handled once."""
    seen = _already_received(provider, reply)
    if seen is not None:
        return seen
    customer = customer_for_reply(store, reply)
    consent = customer.consents.filter(channel=reply.channel).first() if customer else None
    intent = reply_intent(reply, opted_out=bool(consent and consent.status == Consent.Status.OPTED_OUT))
    replied_to = message_replied_to(provider, reply)
    order = order_replied_about(customer, reply, replied_to) if customer else None
    try:
        with transaction.atomic():
            inbound = InboundMessage.objects.create(
                customer=customer,
                order=order or (customer.orders.order_by("-placed_at", "-id").first() if customer else None),
                webhook=webhook,
                channel=reply.channel,
                provider=provider,
                sender=reply.sender[:254],
                provider_message_id=reply.provider_message_id,
                in_reply_to=replied_to,
                text=reply.text[:4000],
                button_payload=reply.button_payload[:256],
                intent=intent,
            )
            handled, done = _act(inbound, customer, order, intent)
            inbound.handled, inbound.outcome = handled, "; ".join(done)[:500]
            inbound.save(update_fields=["handled", "outcome"])
    except IntegrityError:
        # The same provider message, delivered twice at once: the other delivery handled it.
        seen = _already_received(provider, reply)
        if seen is None:
            raise
        return seen
    logger.info("inbound reply inbound_id=%s intent=%s handled=%s", inbound.pk, intent, inbound.handled)
    return inbound


def _already_received(provider: str, reply: InboundReply) -> InboundMessage | None:
    if not reply.provider_message_id:
        return None
    return InboundMessage.objects.filter(
        provider=provider, provider_message_id=reply.provider_message_id
    ).first()


def _act(inbound: InboundMessage, customer, order, intent: str) -> tuple[bool, list[str]]:
    """Apply what the reply asks: whether that handled it (False leaves it in the inbox for an
    agent), and what was done."""
    if customer is None:
        return False, ["unknown sender"]
    if intent in (Intent.OPT_OUT, Intent.OPT_IN):
        opted_out = intent == Intent.OPT_OUT
        consent_record(
            customer,
            inbound.channel,
            Consent.Status.OPTED_OUT if opted_out else Consent.Status.OPTED_IN,
            source=Consent.Source.CUSTOMER_REPLY,
            evidence={
                "inbound_id": inbound.pk,
                "provider": inbound.provider,
                "provider_message_id": inbound.provider_message_id,
                "text": inbound.text[:200],
            },
        )
        return True, [f"opted {'out of' if opted_out else 'back in to'} {inbound.channel}"]
    if order is None:
        return False, ["no recent order"]
    answer = intent in (Intent.CONFIRM, Intent.CANCEL)
    if answer and order.status == OrderStatus.AWAITING_CONFIRMATION:
        try:
            # The resulting status change tells the customer (order_confirmed / order_cancelled).
            event = order_transition(
                order,
                "confirm" if intent == Intent.CONFIRM else "cancel",
                source=OrderEvent.Source.CUSTOMER,
                reason=f"customer replied on {inbound.channel}",
                payload={"inbound_id": inbound.pk},
                idempotency_key=f"reply:{inbound.provider}:{inbound.provider_message_id or inbound.pk}",
            )
        except OrderTransitionError:
            order.refresh_from_db(fields=["status", "status_version", "status_changed_at"])
        else:
            return True, [f"order {event.type}", *_replied(order, intent, inbound, late=False)]
    late = order.status != OrderStatus.AWAITING_CONFIRMATION
    if answer:
        # Too late to change anything (an agent or a rule got there first, or the customer answers
        # again): the store's rules say what became of the order.
        answered = _replied(order, intent, inbound, late=True)
        if answered:
            return True, [f"order already {order.status}", *answered]
        # No rule answers it: it waits for an agent, acknowledged like any unclear message.
    return False, ["for an agent", *_replied(order, "unclear", inbound, late=late)]


def _replied(order, intent: str, inbound: InboundMessage, *, late: bool) -> list[str]:
    """Tell the apps above (automations runs the store's reply rules); what they did, a line each.

    A receiver that fails is logged and skipped (its savepoint rolled back): the reply is kept.
    """
    lines = []
    sent = customer_replied.send_robust(
        sender=InboundMessage, order=order, intent=intent, inbound=inbound, late=late
    )
    for receiver, result in sent:
        if isinstance(result, Exception):  # send_robust logged it; say which reply it was
            logger.warning(
                "reply receiver failed inbound_id=%s receiver=%s error=%s",
                inbound.pk,
                getattr(receiver, "__qualname__", receiver),
                type(result).__name__,
            )
        elif result:
            lines.extend(result)
    return lines


def inbound_mark_handled(inbound_ids, *, actor) -> int:
    """An agent dealt with these replies. Already handled ones keep who handled them."""
    updated = InboundMessage.objects.filter(pk__in=list(inbound_ids), handled=False).update(
        handled=True, handled_by=actor
    )
    logger.info("inbound replies marked handled count=%s user_id=%s", updated, actor.pk)
    return updated
