"""The sandbox phone: each demo customer's conversation as their phone would show it.

Outbound messages are the outbox rows the sandbox provider accepted (ticks follow its simulated
receipts); inbound ones are the replies Livra received. Quick-reply buttons and the text box make
the customer answer: the page asks the server, which signs the reply and has a worker post it to
the sandbox's inbound webhook, a real HTTP request through the same view as any provider's.
The signing key never reaches the browser, so nothing outside Livra can forge a reply, and the
page's own endpoint needs a staff login, the permission and a CSRF token. A user sees and
answers for the customers of the stores they are a member of only (superusers: every store).

A reply never vanishes: until Livra has it (an inbound message with the reply's id), the page
shows it to the agent who sent it (their session keeps it) with its state: sending, trying
again and why, failed and why (with "Send again"), read from the worker task's result.

Only customers who got WhatsApp or SMS messages through the sandbox are shown, and they answer
only on those channels and to those messages: a customer a real provider serves cannot be
impersonated from here (in a store that configured Twilio for SMS, say, but left WhatsApp on
the sandbox, the customer can be answered for on WhatsApp only).
"""

import itertools
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import states
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.db.models import Count, Exists, Max, OuterRef
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import get_text_list
from django.utils.translation import gettext, pgettext, pgettext_lazy
from django.views.decorators.http import require_GET, require_POST

from config.celery import task_publish
from messaging.models import Channel, InboundMessage, Message
from messaging.sandbox_tasks import sandbox_reply_post_task
from orders.models import Customer, Order
from orders.selectors import store_list_for_user
from orders.transitions import OrderStatus

logger = logging.getLogger(__name__)
PROVIDER = "sandbox"
PERMISSION = "messaging.view_message"
SHOWN_PER_SIDE = 100  # the latest messages each way; a demo conversation is far shorter
REPLY_MAX_CHARS = 1000
PHONE_CHANNELS = (Channel.WHATSAPP, Channel.SMS)
# The replies this browser session sent that Livra has not shown yet (the session is the agent's).
PENDING_SESSION_KEY = "sandbox_phone_pending_replies"
PENDING_KEPT = 30
WORKER_SLOW_AFTER = timedelta(seconds=15)  # still not picked up: say the worker may be down
# A message the provider took: the customer has it, so its buttons can be tapped.
REACHED = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ)
# Message status → (ticks, label). Read ticks are the same two, coloured by the template.
TICKS = {
    Message.Status.QUEUED: ("🕓", pgettext_lazy("message status", "queued")),
    Message.Status.SENDING: ("🕓", pgettext_lazy("message status", "sending")),
    Message.Status.SENT: ("✓", pgettext_lazy("message status", "sent")),
    Message.Status.DELIVERED: ("✓✓", pgettext_lazy("message status", "delivered")),
    Message.Status.READ: ("✓✓", pgettext_lazy("message status", "read")),
    Message.Status.FAILED: ("!", pgettext_lazy("message status", "failed")),
    Message.Status.UNDELIVERABLE: ("!", pgettext_lazy("message status", "undeliverable")),
    Message.Status.UNKNOWN: ("?", pgettext_lazy("message status", "unknown")),
}


def staff_with_permission(view):
    """Staff login (the admin's login page), then the permission to read messages."""
    return staff_member_required(permission_required(PERMISSION, raise_exception=True)(view))


@dataclass
class Bubble:
    outbound: bool
    at: datetime
    channel: str
    text: str
    pk: int
    subject: str = ""
    status: str = ""
    ticks: str = ""
    status_label: str = ""
    detail: str = ""
    buttons: list[dict] = field(default_factory=list)
    held_until: datetime | None = None  # not sent yet (quiet hours, retry): when it will go
    # A reply: delivered to Livra, or (not in Livra yet) sending / retrying / failed.
    reply_state: str = ""
    reply_id: str = ""

    @property
    def channel_label(self) -> str:
        return Channel(self.channel).label if self.channel in Channel.values else self.channel


# --- Reads ------------------------------------------------------------------------------------
def sandbox_customers(user):
    """Customers of ``user``'s stores who got phone messages through the sandbox."""
    sandbox_messages = Message.objects.filter(
        customer=OuterRef("pk"), provider=PROVIDER, channel__in=PHONE_CHANNELS
    )
    awaiting = Order.objects.filter(customer=OuterRef("pk"), status=OrderStatus.AWAITING_CONFIRMATION)
    return (
        Customer.objects.filter(Exists(sandbox_messages), store__in=store_list_for_user(user))
        .select_related("store")
        .annotate(
            message_count=Count("messages", distinct=True),
            last_message_at=Max("messages__created_at"),
            awaiting_confirmation=Exists(awaiting),
        )
    )


def phone_conversation(customer: Customer) -> list[Bubble]:
    """The customer's messages both ways, oldest first."""
    messages = (
        Message.objects.filter(customer=customer)
        .select_related("template")
        .order_by("-created_at", "-id")[:SHOWN_PER_SIDE]
    )
    replies = InboundMessage.objects.filter(customer=customer).order_by("-received_at", "-id")
    bubbles = [_outbound_bubble(m) for m in messages]
    bubbles += [
        Bubble(
            outbound=False,
            at=r.received_at,
            channel=r.channel,
            text=r.text or r.button_payload,
            pk=r.pk,
            reply_state="delivered",
            status_label=gettext("delivered to Livra"),
        )
        for r in replies[:SHOWN_PER_SIDE]
    ]
    return sorted(bubbles, key=lambda b: (b.at, b.outbound, b.pk))


def pending_replies(session, customer: Customer) -> list[Bubble]:
    """The replies this session sent for ``customer`` that Livra has not received yet, each with
    its state; those Livra has are forgotten here (the conversation shows them)."""
    entries = session.get(PENDING_SESSION_KEY, [])
    mine = [entry for entry in entries if entry["customer"] == customer.pk]
    if not mine:
        return []
    arrived = set(
        InboundMessage.objects.filter(
            provider=PROVIDER, provider_message_id__in=[entry["id"] for entry in mine]
        ).values_list("provider_message_id", flat=True)
    )
    if arrived:
        session[PENDING_SESSION_KEY] = [entry for entry in entries if entry["id"] not in arrived]
    return [_pending_bubble(entry) for entry in mine if entry["id"] not in arrived]


def _pending_bubble(entry: dict) -> Bubble:
    from messaging.sandbox_tasks import sandbox_reply_post_task

    sent_at = parse_datetime(entry["at"])
    result = sandbox_reply_post_task.AsyncResult(entry["task"])
    state, detail = "sending", ""
    if result.state == states.SUCCESS:
        state = "delivered"  # Livra took it (it may be in its provider webhooks, flagged)
    elif result.state == states.FAILURE:
        state, detail = "failed", str(result.result)
    elif result.state == states.RETRY:
        state, detail = "retrying", str(result.result)
    elif timezone.now() - sent_at > WORKER_SLOW_AFTER:
        detail = gettext("no worker has taken it yet: is the Celery worker running?")
    labels = {
        "sending": gettext("sending…"),
        "retrying": gettext("not delivered yet"),
        "failed": pgettext("reply state", "failed"),
        "delivered": gettext("delivered to Livra"),
    }
    return Bubble(
        outbound=False,
        at=sent_at,
        channel=entry["channel"],
        text=entry["text"],
        pk=0,
        reply_state=state,
        status_label=labels[state],
        detail=detail,
        reply_id=entry["id"],
    )


def _outbound_bubble(message: Message) -> Bubble:
    ticks, label = TICKS.get(message.status, ("?", message.status))
    buttons = []
    if message.template is not None and message.channel == Channel.WHATSAPP and message.status in REACHED:
        buttons = [b for b in message.template.buttons if b.get("id") and b.get("title")]
    return Bubble(
        outbound=True,
        at=message.created_at,
        channel=message.channel,
        # A queued message is written (rendered) when it is sent.
        text=message.body or gettext("“%(event)s”, written when it is sent") % {"event": message.event},
        pk=message.pk,
        subject=message.subject,
        status=message.status,
        ticks=ticks,
        status_label=label,
        detail=message.error[:200]
        if message.status in (Message.Status.FAILED, Message.Status.UNDELIVERABLE)
        else "",
        buttons=buttons,
        held_until=message.next_attempt_at if message.status == Message.Status.QUEUED else None,
    )


def sandbox_channels(customer: Customer) -> list[str]:
    """The phone channels on which the sandbox, not a real provider, talked to the customer."""
    used = set(
        Message.objects.filter(customer=customer, provider=PROVIDER, channel__in=PHONE_CHANNELS).values_list(
            "channel", flat=True
        )
    )
    return [channel for channel in PHONE_CHANNELS if channel in used]


def _reply_channel(bubbles: list[Bubble], channels: list[str]) -> str:
    """Answer on the sandbox channel the customer last heard from."""
    heard = [b.channel for b in bubbles if b.outbound and b.channel in channels]
    return heard[-1] if heard else channels[0]


def _sandbox_customer(request, customer_id: int) -> Customer:
    return get_object_or_404(sandbox_customers(request.user), pk=customer_id)


def _fragments(request, customer: Customer, bubbles: list[Bubble]) -> dict:
    bubbles = sorted(
        bubbles + pending_replies(request.session, customer), key=lambda b: (b.at, b.outbound, b.pk)
    )
    tz = customer.store.time_zone
    by_local_day = itertools.groupby(bubbles, key=lambda b: timezone.localtime(b.at, tz).date())
    days = [(day, list(group)) for day, group in by_local_day]
    orders = customer.orders.order_by("-placed_at", "-id")[:10]
    context = {"customer": customer, "days": days, "orders": orders, "tz": tz}
    return {
        "conversation": render_to_string("messaging/sandbox/_conversation.html", context, request),
        "orders": render_to_string("messaging/sandbox/_orders.html", context, request),
    }


# --- Views ------------------------------------------------------------------------------------
@require_GET
@staff_with_permission
def phone_customers(request):
    customers = sandbox_customers(request.user).order_by("-awaiting_confirmation", "-last_message_at", "-pk")[
        :200
    ]
    context = {**admin.site.each_context(request), "title": gettext("Sandbox phone"), "customers": customers}
    return render(request, "messaging/sandbox/customers.html", context)


@require_GET
@staff_with_permission
def phone(request, customer_id: int):
    customer = _sandbox_customer(request, customer_id)
    bubbles, channels = phone_conversation(customer), sandbox_channels(customer)
    context = {
        **admin.site.each_context(request),
        "title": gettext("Sandbox phone: %(customer)s") % {"customer": customer.name},
        "customer": customer,
        "phone_channels": [Channel(c) for c in channels],
        "reply_channel": _reply_channel(bubbles, channels),
        "public_url": settings.LIVRA_PUBLIC_URL,
        **_fragments(request, customer, bubbles),
    }
    return render(request, "messaging/sandbox/phone.html", context)


@require_GET
@staff_with_permission
def phone_feed(request, customer_id: int):
    """What the page polls to show new messages and receipts."""
    customer = _sandbox_customer(request, customer_id)
    return JsonResponse(_fragments(request, customer, phone_conversation(customer)))


@require_POST
@staff_with_permission
def phone_reply(request, customer_id: int):
    """The customer taps a quick reply or sends text: queue the signed inbound webhook."""
    customer = _sandbox_customer(request, customer_id)
    if not customer.phone:
        return HttpResponseBadRequest(gettext("this customer has no valid phone number"))
    if request.POST.get("resend"):
        return _resend(request, customer, request.POST["resend"])
    if request.POST.get("button"):
        reply = _button_reply(customer, request.POST.get("message", ""), request.POST["button"])
    else:
        reply = _text_reply(
            request.POST.get("text", ""), request.POST.get("channel", ""), sandbox_channels(customer)
        )
    if isinstance(reply, str):
        return HttpResponseBadRequest(reply)
    reply_id = f"SBIN{uuid.uuid4().hex}"
    body = json.dumps({"id": reply_id, "from": customer.phone, **reply}, ensure_ascii=False)
    entry = {"id": reply_id, "customer": customer.pk, "channel": reply["channel"], "text": reply["text"]}
    return _post_reply(request, customer, {**entry, "body": body})


def _resend(request, customer: Customer, reply_id: str):
    """Post a reply that failed again: the same body, so Livra takes it once however often."""
    entries = request.session.get(PENDING_SESSION_KEY, [])
    entry = next((e for e in entries if e["id"] == reply_id and e["customer"] == customer.pk), None)
    if entry is None:
        return HttpResponseBadRequest(gettext("no such reply waiting to be sent again"))
    return _post_reply(request, customer, entry)


def _post_reply(request, customer: Customer, entry: dict):
    """Remember the reply in the session (with a new task), then have the worker post it."""
    task_id = str(uuid.uuid4())
    entry = {**entry, "task": task_id, "at": timezone.now().isoformat()}
    others = [e for e in request.session.get(PENDING_SESSION_KEY, []) if e["id"] != entry["id"]]
    request.session[PENDING_SESSION_KEY] = [*others, entry][-PENDING_KEPT:]
    request.session.save()  # before the task runs: an eager one reads nothing, a worker may be fast
    if not task_publish(sandbox_reply_post_task, customer.store.slug, entry["body"], task_id=task_id):
        # The reply stays on the page as not sent; "Send again" tries once the broker is back.
        return HttpResponse(
            gettext("the worker queue is unavailable, try again in a moment"),
            status=503,
            content_type="text/plain",
        )
    logger.info("sandbox reply queued customer_id=%s user_id=%s", customer.pk, request.user.pk)
    return JsonResponse({"queued": True, "reply": entry["id"]}, status=202)


def _button_reply(customer: Customer, message_id: str, button_id: str) -> dict | str:
    """The button's payload is built here from the message it sits under, never taken from the page."""
    message = (
        Message.objects.filter(
            customer=customer, provider=PROVIDER, pk=message_id if message_id.isdigit() else None
        )
        .select_related("template")
        .first()
    )
    buttons = message.template.buttons if message is not None and message.template is not None else []
    button = next((b for b in buttons if b.get("id") == button_id), None)
    if button is None or message.status not in REACHED:
        return gettext("no such button on this customer's message")
    return {
        "channel": message.channel,
        "text": button.get("title", ""),
        "button_payload": f"{button_id}:{message.order_id}",
        "in_reply_to": message.provider_message_id,  # as WhatsApp gives the message's id (context)
    }


def _text_reply(text: str, channel: str, channels: list[str]) -> dict | str:
    text = text.strip()
    if not text or len(text) > REPLY_MAX_CHARS:
        return gettext("type a reply of 1 to %(max)s characters") % {"max": REPLY_MAX_CHARS}
    if channel not in channels:
        # get_text_list: "whatsapp or sms", its "or" translated by Django.
        return gettext("this customer can only be answered for on %(channels)s here") % {
            "channels": get_text_list(channels)
        }
    return {"channel": channel, "text": text}
