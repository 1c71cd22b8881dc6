import secrets
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition
from timezone_field import TimeZoneField

from orders.phones import normalize_phone
from orders.transitions import TRANSITIONS, OrderStatus, PaymentMethod, transition_kwargs

MONEY = {"max_digits": 12, "decimal_places": 2, "validators": [MinValueValidator(Decimal("0"))]}


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def default_cod_gateway_names() -> list[str]:
    # Merchants rename manual payment methods; these are the common names (stores.md).
    return ["cash on delivery", "cash_on_delivery", "cod", "pay on delivery", "collect on delivery"]


class Store(models.Model):
    class Platform(models.TextChoices):
        SHOPIFY = "shopify", "Shopify"
        WOOCOMMERCE = "woocommerce", "WooCommerce"
        YOUCAN = "youcan", "YouCan"
        CUSTOM = "custom", _("Custom / API")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), unique=True)
    platform = models.CharField(
        _("platform"), max_length=20, choices=Platform.choices, default=Platform.CUSTOM
    )
    currency = models.CharField(
        _("currency"), max_length=3, default="MAD", help_text=_("ISO 4217 code, e.g. MAD")
    )
    default_phone_region = models.CharField(
        _("default phone region"),
        max_length=2,
        default="MA",
        help_text=_("ISO 3166 country used to read local phone numbers"),
    )
    time_zone = TimeZoneField(_("time zone"), default="Africa/Casablanca")
    # Livra's secret for this store's webhooks (WooCommerce, generic JSON): shown once when made or
    # rotated (orders.services.stores), never rendered again nor logged. The previous one keeps
    # working for a grace period after a rotation, while the store updates its side.
    webhook_secret = models.CharField(max_length=128, default=new_webhook_secret, editable=False)
    previous_webhook_secret = models.CharField(max_length=128, blank=True, editable=False)
    webhook_secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The platform's own signing secret where the platform makes it (Shopify's app client secret,
    # YouCan's): entered in admin, write-only there, never logged.
    platform_secret = models.CharField(max_length=256, blank=True, editable=False)
    shop_domain = models.CharField(
        _("shop domain"),
        max_length=255,
        blank=True,
        help_text=_("Shopify: the shop's myshopify.com domain, checked on every delivery"),
    )
    cod_gateway_names = models.JSONField(
        _("COD gateway names"),
        default=default_cod_gateway_names,
        blank=True,
        help_text=_("Payment gateway names that mean cash on delivery (case-insensitive, whole words)"),
    )
    payment_link_url = models.URLField(
        _("payment link URL"),
        max_length=500,
        blank=True,
        help_text=_(
            "Where a customer can pay an order online, with {order_number} where its number goes "
            "(e.g. https://pay.example.ma/o/{order_number}); a failed delivery then offers it"
        ),
    )

    class ShipAt(models.TextChoices):
        CREATION = "creation", _("When the carrier creates the parcel")
        PICKUP = "pickup", _("When the carrier picks the parcel up")

    ship_at = models.CharField(
        _("orders are shipped"),
        max_length=20,
        choices=ShipAt.choices,
        default=ShipAt.CREATION,
        help_text=_(
            "When an order whose parcel Livra created at a carrier moves to shipped (and the customer "
            "is told): as soon as the parcel exists, or once the carrier reports it picked up"
        ),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("members"),
        blank=True,
        related_name="stores",
        help_text=_("Users who work on this store (API tokens are scoped to these stores)"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def payment_link_for(self, order_number: str) -> str:
        """The store's payment page for one order ("" when the store has none)."""
        if not self.payment_link_url:
            return ""
        return self.payment_link_url.replace("{order_number}", quote(order_number.lstrip("#"), safe=""))


class Customer(models.Model):
    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        FRENCH = "fr", "Français"
        ARABIC = "ar", "العربية"

    store = models.ForeignKey(
        Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="customers"
    )
    name = models.CharField(_("name"), max_length=200)
    phone_raw = models.CharField(_("phone as given"), max_length=40, blank=True)
    # E.164, derived from phone_raw with the store's region; empty when the number is invalid.
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True, editable=False)
    email = models.EmailField(_("email"), blank=True, db_index=True)
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.FRENCH
    )
    preferred_channel = models.CharField(
        _("preferred channel"),
        max_length=20,
        blank=True,
        help_text=_("Tried first when the customer has consent there, e.g. whatsapp"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.UniqueConstraint(
                fields=["store", "phone"],
                condition=~models.Q(phone=""),
                name="customer_unique_phone_per_store",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.phone = normalize_phone(self.phone_raw, self.store.default_phone_region) or ""
        if kwargs.get("update_fields") is not None and "phone_raw" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "phone"}
        super().save(*args, **kwargs)

    @property
    def phone_is_valid(self) -> bool:
        return bool(self.phone)


def _transition(name: str):
    return transition(**transition_kwargs(name))


class Order(ConcurrentTransitionMixin, models.Model):
    store = models.ForeignKey(Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="orders")
    external_id = models.CharField(
        _("external id"), max_length=100, help_text=_("The order's id on the store platform")
    )
    number = models.CharField(
        _("order number"), max_length=50, help_text=_("What the customer sees, e.g. #1042")
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="orders"
    )
    payment_method = models.CharField(_("payment method"), max_length=10, choices=PaymentMethod.choices)
    currency = models.CharField(_("currency"), max_length=3)
    total_amount = models.DecimalField(_("total amount"), **MONEY)
    cod_amount = models.DecimalField(
        _("amount to collect"), **MONEY, default=Decimal("0"), help_text=_("Cash the courier collects (COD)")
    )
    shipping_address = models.TextField(_("shipping address"), blank=True)
    shipping_city = models.CharField(_("shipping city"), max_length=100, blank=True, db_index=True)
    notes = models.TextField(_("notes"), blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)

    # Written only by orders.services.order_transition (protected: plain assignment raises).
    status = FSMField(
        _("status"), choices=OrderStatus.choices, default=OrderStatus.PLACED, protected=True, db_index=True
    )
    # Bumped by every transition: orders the audit trail and keys what a transition causes.
    status_version = models.PositiveIntegerField(_("status version"), default=0, editable=False)
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True, editable=False)

    placed_at = models.DateTimeField(
        _("placed at"), db_index=True, help_text=_("When the customer placed it on the store")
    )
    # The platform's updated_at of the newest update applied: an older delivery changes nothing.
    external_updated_at = models.DateTimeField(
        _("external updated at"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "external_id"], name="order_unique_external_id_per_store"
            ),
            models.CheckConstraint(
                condition=models.Q(cod_amount__lte=models.F("total_amount"))
                | models.Q(payment_method=PaymentMethod.PREPAID),
                name="order_cod_amount_within_total",
            ),
        ]
        indexes = [models.Index(fields=["store", "status"], name="order_store_status_idx")]
        permissions = [(spec.permission, spec.permission_label) for spec in TRANSITIONS]

    def __str__(self) -> str:
        return f"{self.number} ({self.store})"

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        """Reload from the database, the protected status included, changing this instance only.

        django-fsm's ``FSMModelMixin`` lets a reload write the protected status by switching
        ``protected`` off on the model's field, which every thread shares, and on again after.
        On a worker's threads pool one thread's reload then failed with "Direct status
        modification is not allowed" when another's switched it back on midway, and while it
        was off any thread could assign the status. The field refuses a write only when the
        instance already holds a status, so here the instance lets go of its own before Django's
        reload (past the mixin's switch) loads it again.
        """
        held = {name for name in self._get_protected_fsm_fields() if name in self.__dict__}
        if fields is not None:
            held &= set(fields)
        for name in held:
            del self.__dict__[name]
        super(FSMModelMixin, self).refresh_from_db(using, fields, from_queryset)
        if missing := {name for name in held if name not in self.__dict__}:
            # A full reload takes what the instance no longer holds for deferred: load it now.
            super(FSMModelMixin, self).refresh_from_db(using, missing, from_queryset)
        self._update_initial_state()  # ConcurrentTransitionMixin's guard compares with this status

    # --- transitions: bodies stay empty; the table says where each may go --------------------
    @_transition("request_confirmation")
    def request_confirmation(self): ...

    @_transition("accept")
    def accept(self): ...

    @_transition("confirm")
    def confirm(self): ...

    @_transition("cancel")
    def cancel(self): ...

    @_transition("start_processing")
    def start_processing(self): ...

    @_transition("ship")
    def ship(self): ...

    @_transition("mark_in_transit")
    def mark_in_transit(self): ...

    @_transition("mark_out_for_delivery")
    def mark_out_for_delivery(self): ...

    @_transition("fail_delivery")
    def fail_delivery(self): ...

    @_transition("reschedule_delivery")
    def reschedule_delivery(self): ...

    @_transition("deliver")
    def deliver(self): ...

    @_transition("initiate_return")
    def initiate_return(self): ...

    @_transition("mark_returned")
    def mark_returned(self): ...

    @_transition("refund")
    def refund(self): ...


class OrderItem(models.Model):
    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    title = models.CharField(_("title"), max_length=300)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), **MONEY)

    class Meta:
        verbose_name = _("order item")
        verbose_name_plural = _("order items")

    def __str__(self) -> str:
        return f"{self.quantity} × {self.title}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderEvent(models.Model):
    """Append-only audit trail: one row per status change (and, later, per notable fact)."""

    class Source(models.TextChoices):
        STORE = "store", _("Store")
        CARRIER = "carrier", _("Carrier")
        AGENT = "agent", _("Agent")
        CUSTOMER = "customer", _("Customer")
        AUTOMATION = "automation", _("Automation")
        SYSTEM = "system", _("System")

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="events")
    type = models.CharField(_("type"), max_length=50, help_text=_("What happened, in the past tense"))
    transition = models.CharField(_("transition"), max_length=50, blank=True)
    from_status = models.CharField(_("from status"), max_length=30, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(_("to status"), max_length=30, choices=OrderStatus.choices, blank=True)
    status_version = models.PositiveIntegerField(_("status version"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["created_at", "id"]
        constraints = [
            # Two events can never claim the same status change of one order.
            models.UniqueConstraint(
                fields=["order", "status_version"], name="order_event_unique_status_version"
            ),
            models.UniqueConstraint(
                fields=["order", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="order_event_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.get_from_status_display()} → {self.get_to_status_display()})"


class StoreDelivery(models.Model):
    """The inbox: one row per webhook delivery a store platform made, stored raw before anything else.

    A delivery is answered as soon as its row commits; a task processes it after. A duplicate (the
    same idempotency key) is answered 200 and not stored twice. Nothing is dropped: a payload that
    cannot be read, or says something Livra cannot apply, is kept and flagged for a human; one whose
    processing fails is retried with backoff ("retrying"), then kept as failed for a human.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received, not processed yet")
        PROCESSED = "processed", _("Processed")
        SKIPPED = "skipped", _("Nothing to do (older than what Livra has)")
        FLAGGED = "flagged", _("Flagged for a human")
        RETRYING = "retrying", _("Failed, to be retried automatically")
        FAILED = "failed", _("Failed (can be retried)")

    store = models.ForeignKey(
        Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="deliveries"
    )
    platform = models.CharField(_("platform"), max_length=20)
    topic = models.CharField(_("topic"), max_length=100, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    headers = models.JSONField(
        _("headers"), default=dict, help_text=_("The headers that matter, signature excluded")
    )
    body = models.BinaryField(_("body"), help_text=_("The body exactly as received"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    order = models.ForeignKey(
        Order,
        verbose_name=_("order"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    notes = models.JSONField(
        _("notes"), default=list, blank=True, help_text=_("What processing noticed (flags, skips)")
    )
    error = models.TextField(_("error"), blank=True)
    error_trace = models.TextField(_("error trace"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When a "retrying" delivery is due again (orders.services.ingest's backoff); empty otherwise.
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("store delivery")
        verbose_name_plural = _("store deliveries")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "platform", "idempotency_key"], name="store_delivery_unique_key"
            )
        ]
        indexes = [
            # The drain and the sweep look for due retries among few rows, not the whole inbox.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="retrying"),
                name="store_delivery_retry_due_idx",
            )
        ]
        permissions = [("retry_storedelivery", "Can retry a store delivery")]

    # The status in one word, for badges, titles and notices (the choices' labels explain it).
    STATUS_WORDS = {
        Status.RECEIVED: pgettext_lazy("store delivery", "received"),
        Status.PROCESSED: pgettext_lazy("store delivery", "processed"),
        Status.SKIPPED: pgettext_lazy("store delivery", "skipped"),
        Status.FLAGGED: pgettext_lazy("store delivery", "flagged"),
        Status.RETRYING: pgettext_lazy("store delivery", "retrying"),
        Status.FAILED: pgettext_lazy("store delivery", "failed"),
    }

    def __str__(self) -> str:
        return f"{self.platform} {self.topic or '?'} #{self.pk} ({self.status_word})"

    @property
    def status_word(self) -> str:
        return str(self.STATUS_WORDS.get(self.status, self.status))


class Wakeup(models.Model):
    """A drain task has been asked for and has not started yet (``orders.wakeups``): one row per
    drain, so that a burst of commits publishes one task, not one each."""

    name = models.CharField(_("name"), primary_key=True, max_length=100)
    requested_at = models.DateTimeField(_("requested at"))

    class Meta:
        verbose_name = _("wakeup")
        verbose_name_plural = _("wakeups")

    def __str__(self) -> str:
        return f"{self.name} requested at {self.requested_at:%H:%M:%S}"


# The API's tokens live with the API (orders/api/models.py); imported here so Django sees the model.
from orders.api.models import ApiToken  # noqa: E402, F401
