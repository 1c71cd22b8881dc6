"""The demo's past, played through Livra's own services on a simulated clock.

A plan (``orders.demo``) says what people and carriers did and when: the store's webhook brought
an order, the customer tapped "Confirm" twenty minutes later, the carrier delivered on Tuesday.
``demo_history_play`` plays it in time order, moving a simulated clock (time-machine) to each
moment and calling the same services as the live system: ``order_create`` and
``order_transition`` (so the store's rules ask, tell, remind and queue), the outbox drain a second
or two after a message is queued, the sandbox's receipts a few seconds after a send and its reads
minutes later, the customer's replies through ``inbound_reply_handle``, and the timer sweep at
every minute a timer falls due, as celery-beat runs it. Every row is written when it happened;
nothing is re-dated afterwards.

History stops where the newest ("live") order begins: from then on the worker and beat take over,
so that order's confirmation request is sent, and answered, while the newcomer watches.

The demo drives every app, so this module reaches past orders into messaging and automations;
it is the seed's alone, and nothing in the apps imports it.
"""

import heapq
import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Min
from django.utils import timezone

from automations.models import Timer
from automations.services.sweep import timers_sweep
from messaging.models import Channel, Message
from messaging.providers import InboundReply, StatusUpdate
from messaging.services.dispatch import outbox_drain
from messaging.services.inbound import inbound_reply_handle
from messaging.services.receipts import message_apply_status
from messaging.services.routing import channel_providers_choose_sandbox
from orders.demo import SEED, CustomerPlan, OrderPlan, Step
from orders.models import Customer, Order, OrderEvent, OrderItem, Store
from orders.services import order_create, order_transition
from orders.transitions import TRANSITIONS_BY_NAME, OrderStatus, PaymentMethod

SANDBOX = "sandbox"
AGENT_USERNAME = "salma.agent"  # the demo's confirmation agent (no password: nobody logs in as her)
AGENT_GROUP = "Confirmation agent"
STORE_AGE = timedelta(days=2)  # the store was set up this long before its first order
REACHED = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ)


class DemoHistoryError(Exception):
    """The plan and what Livra did disagree (a rule moved an order the plan did not expect)."""


def seconds(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(seconds=rng.uniform(low, high))


@dataclass(order=True)
class _Action:
    at: datetime
    seq: int
    run: object = field(compare=False)
    args: tuple = field(compare=False, default=())


class DemoHistory:
    def __init__(self, customers: list[CustomerPlan], plans: list[OrderPlan], *, seed: int = SEED):
        self.customer_plans, self.plans = customers, plans
        self.rng = random.Random(seed + 1)  # noqa: S311 - demo data, not secrets
        self.queue: list[_Action] = []
        self.seq = itertools.count()
        # History ends where the live order begins; the worker and beat do the rest.
        self.cutoff = min((plan.placed_at for plan in plans if plan.live), default=timezone.now())
        self.next_drain: datetime | None = None
        self.next_sweep: datetime | None = None
        self.customers: dict[int, Customer] = {}
        self.orders: dict[int, Order] = {}  # by plan index
        self.plan_index: dict[int, int] = {}  # by order id
        # When each order's customer writes next: a message is read before its answer.
        self.customer_writes: dict[int, list[datetime]] = {}
        self.store: Store | None = None
        self.agent = None

    # --- playing -----------------------------------------------------------------------------
    def play(self, **store_values) -> list[Order]:
        """Create the store and play every plan; the orders, in plan order."""
        first = min(plan.placed_at for plan in self.plans)
        with time_machine.travel(first - STORE_AGE, tick=False) as clock:
            self.store = Store.objects.create(**store_values)  # its default rules come with it
            # The demo's messages go to the sandbox phone, chosen like any store's provider.
            channel_providers_choose_sandbox(self.store)
            self.agent = self._agent()
            for index, plan in enumerate(self.plans):
                arrives = plan.placed_at + seconds(self.rng, 2, 20)  # the store's webhook
                self._schedule(arrives, self._place, index)
                self.customer_writes[index] = sorted(
                    [step.at for step in plan.steps if step.reply in ("button", "text")]
                    + ([plan.question_at] if plan.question_at else [])
                )
            while self.queue:
                action = heapq.heappop(self.queue)
                if action.at >= self.cutoff and action.run != self._place:
                    continue  # the live system's, from here on
                clock.move_to(action.at)
                action.run(*action.args)
        return [self.orders[index] for index in range(len(self.plans))]

    def _schedule(self, at: datetime, run, *args) -> None:
        heapq.heappush(self.queue, _Action(at, next(self.seq), run, args))

    def _agent(self):
        agent, created = get_user_model().objects.get_or_create(
            username=AGENT_USERNAME,
            defaults={"first_name": "Salma", "last_name": "Bennani", "is_staff": True},
        )
        if created:
            agent.set_unusable_password()
            agent.save(update_fields=["password"])
            agent.groups.add(Group.objects.get(name=AGENT_GROUP))
        return agent

    # --- what people and carriers do -----------------------------------------------------------
    def _place(self, index: int) -> None:
        plan = self.plans[index]
        customer = self._customer(plan.customer_index)
        total = sum((product.price * quantity for product, quantity in plan.items), 0)
        order = Order(
            store=self.store,
            external_id=str(5_812_300_000_000 + (1001 + index) * 7919),  # Shopify-sized ids
            number=f"#{1001 + index}",
            customer=customer,
            payment_method=plan.payment_method,
            currency=self.store.currency,
            total_amount=total,
            cod_amount=total if plan.payment_method == PaymentMethod.COD else 0,
            shipping_address=self.customer_plans[plan.customer_index].address,
            shipping_city=self.customer_plans[plan.customer_index].city,
            notes=plan.notes,
            placed_at=plan.placed_at,
        )
        order_create(order, source=OrderEvent.Source.STORE)  # the store's rules make its first move
        OrderItem.objects.bulk_create(
            OrderItem(order=order, sku=p.sku, title=p.title, quantity=q, unit_price=p.price)
            for p, q in plan.items
        )
        self.orders[index], self.plan_index[order.pk] = order, index
        for step in plan.steps:
            self._schedule(step.at, self._step, index, step)
        if plan.question_at:
            self._schedule(plan.question_at, self._question, index)
        self._follow_up()

    def _customer(self, index: int) -> Customer:
        if index not in self.customers:  # a customer appears with their first order
            spec = self.customer_plans[index]
            self.customers[index] = Customer.objects.create(
                store=self.store,
                name=spec.name,
                phone_raw=spec.phone_raw,
                email=spec.email,
                language=spec.language,
                preferred_channel=spec.preferred_channel,
            )
        return self.customers[index]

    def _step(self, index: int, step: Step) -> None:
        order = self.orders[index]
        if step.reply in ("button", "text") and self._reply(order, step):
            pass
        elif step.source == OrderEvent.Source.CUSTOMER and step.transition in ("confirm", "cancel"):
            # The customer called, or answered the agent's call: the agent records it.
            reason = step.reason or "the customer answered by phone"
            order_transition(
                order, step.transition, source=OrderEvent.Source.AGENT, actor=self.agent, reason=reason
            )
        else:
            order_transition(
                order, step.transition, source=step.source, reason=step.reason, payload=step.payload
            )
        order.refresh_from_db(fields=["status"])
        if order.status != TRANSITIONS_BY_NAME[step.transition].target:
            raise DemoHistoryError(f"demo order {order.number} is {order.status} after {step.transition}")
        self._follow_up()

    def _reply(self, order: Order, step: Step) -> bool:
        """The customer answers the confirmation request; False when they could not (no message
        reached them, or their words would answer another of their orders)."""
        asked = self._confirmation_request(order)
        if asked is None:
            return False
        button = None
        if step.reply == "button" and asked.channel == Channel.WHATSAPP and asked.template is not None:
            wanted = "confirm" if step.transition == "confirm" else "cancel"
            button = next((b for b in asked.template.buttons if b.get("id") == wanted), None)
        if button is None and self._another_order_awaits(order):
            return False  # words alone would answer the other order
        reply = InboundReply(
            channel=asked.channel,
            sender=order.customer.phone,
            provider_message_id=f"SBIN{uuid.UUID(int=self.rng.getrandbits(128)).hex}",
            text=button["title"] if button else step.words,
            button_payload=f"{button['id']}:{order.pk}" if button else "",
            in_reply_to_provider_id=asked.provider_message_id if button else "",
        )
        inbound_reply_handle(self.store, SANDBOX, reply)
        return True

    def _question(self, index: int) -> None:
        order, plan = self.orders[index], self.plans[index]
        asked = self._confirmation_request(order)
        channel = asked.channel if asked is not None else Channel.WHATSAPP
        reply = InboundReply(
            channel=channel,
            sender=order.customer.phone,
            provider_message_id=f"SBIN{uuid.UUID(int=self.rng.getrandbits(128)).hex}",
            text=plan.question,
        )
        inbound_reply_handle(self.store, SANDBOX, reply)  # it waits in the inbox for an agent
        self._follow_up()

    def _confirmation_request(self, order: Order) -> Message | None:
        """The latest confirmation request (or reminder) that reached the customer."""
        return (
            Message.objects.filter(order=order, event="confirmation_requested", status__in=REACHED)
            .select_related("template")
            .order_by("-created_at", "-pk")
            .first()
        )

    def _another_order_awaits(self, order: Order) -> bool:
        awaiting = Order.objects.filter(customer=order.customer, status=OrderStatus.AWAITING_CONFIRMATION)
        return awaiting.exclude(pk=order.pk).exists()

    # --- what Livra's worker and beat do -----------------------------------------------------
    def _follow_up(self) -> None:
        """After a change: a drain for messages now queued, a sweep for timers now pending."""
        now = timezone.now()
        due = Message.objects.filter(status=Message.Status.QUEUED).aggregate(due=Min("next_attempt_at"))[
            "due"
        ]
        if due is not None:
            # A wake-up drains within a second or two; a message held for quiet hours goes with
            # the outbox sweep's next minute after they end.
            drain_at = now + seconds(self.rng, 1, 3) if due <= now else due + seconds(self.rng, 5, 60)
            if self.next_drain is None or drain_at < self.next_drain:
                self.next_drain = drain_at
                self._schedule(drain_at, self._drain, drain_at)
        due = Timer.objects.filter(state=Timer.State.PENDING).aggregate(due=Min("due_at"))["due"]
        if due is not None:
            # celery-beat runs the sweep at the start of every minute
            sweep_at = due.replace(second=0, microsecond=0) + timedelta(minutes=1) + seconds(self.rng, 0.2, 2)
            if self.next_sweep is None or sweep_at < self.next_sweep:
                self.next_sweep = sweep_at
                self._schedule(sweep_at, self._sweep, sweep_at)

    def _drain(self, planned_at: datetime) -> None:
        if planned_at != self.next_drain:
            return  # an earlier drain was wanted since, and has run
        self.next_drain = None
        now = timezone.now()
        outbox_drain()
        for message in Message.objects.filter(provider=SANDBOX, status=Message.Status.SENT, sent_at=now):
            delivered = now + seconds(self.rng, 1, 5)
            self._schedule(delivered, self._receipt, message.pk, message.provider_message_id, "delivered")
            if message.channel == Channel.WHATSAPP:  # the one channel with read receipts
                read = self._read_at(message, delivered)
                if read is not None:
                    self._schedule(read, self._receipt, message.pk, message.provider_message_id, "read")
        self._follow_up()

    def _read_at(self, message: Message, delivered: datetime) -> datetime | None:
        """When the customer opens the message: soon, later, or never, but always before they
        answer it."""
        writes = self.customer_writes[self.plan_index[message.order_id]]
        answer = next((at for at in writes if at > delivered), None)
        if answer is None and self.rng.random() < 0.1:
            return None
        read = delivered + self.rng.choice(
            [seconds(self.rng, 15, 120), seconds(self.rng, 120, 1200), seconds(self.rng, 1200, 7200)]
        )
        if answer is not None and read > answer - timedelta(seconds=20):
            read = delivered + (answer - delivered) * self.rng.uniform(0.3, 0.8)
        return read

    def _receipt(self, message_id: int, provider_message_id: str, status: str) -> None:
        update = StatusUpdate(provider_message_id, status, correlation={"message_id": str(message_id)})
        message_apply_status(SANDBOX, update)

    def _sweep(self, planned_at: datetime) -> None:
        if planned_at != self.next_sweep:
            return  # an earlier sweep was wanted since, and has run
        self.next_sweep = None
        timers_sweep()
        self._follow_up()


def demo_history_play(customers: list[CustomerPlan], plans: list[OrderPlan], **store_values) -> list[Order]:
    """Create the demo store and play its history (see the module docstring)."""
    return DemoHistory(customers, plans).play(**store_values)
