from django.conf import settings
from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _


class TrackingState(models.TextChoices):
    """Where the parcel is: ``carriers.adapters.State``'s values, with labels people read."""

    INFO_RECEIVED = "info_received", _("Information received")
    PICKED_UP = "picked_up", _("Picked up")
    IN_TRANSIT = "in_transit", _("In transit")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed")
    DELIVERED = "delivered", _("Delivered")
    AVAILABLE_FOR_PICKUP = "available_for_pickup", _("Available for pickup")
    ON_HOLD = "on_hold", _("On hold")
    RETURNING = "returning", _("Returning to the sender")
    RETURNED = "returned", _("Returned to the sender")
    CANCELLED = "cancelled", _("Cancelled")
    LOST = "lost", _("Lost")


class TrackingReason(models.TextChoices):
    """Why it failed or stalled: ``carriers.adapters.Reason``'s values (blank: none)."""

    REFUSED = "refused", _("Refused")
    UNREACHABLE = "unreachable", _("Customer unreachable")
    WRONG_ADDRESS = "wrong_address", _("Wrong address")
    POSTPONED = "postponed", _("Postponed by the customer")
    CUSTOMER_CANCELLED = "customer_cancelled", _("Cancelled by the customer")
    DAMAGED = "damaged", _("Damaged")
    LOST = "lost", _("Lost")
    OTHER = "other", _("Other")


class CarrierAccount(models.Model):
    """A store's account at a carrier. Credentials stay in the environment, under ``env_prefix``."""

    store = models.ForeignKey(
        "orders.Store", on_delete=models.CASCADE, related_name="carrier_accounts", verbose_name=_("store")
    )
    # A registered adapter's name (carriers.adapters): the admin's form offers them.
    carrier = models.CharField(_("carrier"), max_length=50)
    name = models.CharField(_("name"), max_length=100, help_text=_("e.g. Casablanca warehouse"))
    env_prefix = models.CharField(
        _("credentials env prefix"),
        max_length=100,
        help_text=_("Credentials are read from environment variables starting with this, e.g. LIVRA_SENDIT"),
    )
    webhook_secret_env = models.CharField(
        _("webhook secret variable"),
        max_length=120,
        blank=True,
        help_text=_("The environment variable holding the webhook secret; empty: PREFIX_WEBHOOK_SECRET"),
    )
    pickup_address = models.JSONField(
        _("pickup address"), default=dict, blank=True, help_text=_("Where the carrier collects parcels")
    )
    default_options = models.JSONField(
        _("default options"),
        default=dict,
        blank=True,
        help_text=_("Sent with every parcel unless the order says otherwise"),
    )
    tracking_url_template = models.CharField(
        _("tracking page"),
        max_length=300,
        blank=True,
        help_text=_(
            "The customer's tracking link, with {number} for the tracking number; empty: the carrier's "
            "public tracking page where Livra knows one"
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    remittance_columns = models.JSONField(
        _("remittance statement columns"),
        default=dict,
        blank=True,
        help_text=_(
            "Where this account's remittance statements differ from the carrier's usual columns: a "
            "JSON object from a field (tracking_number, collected_amount, fee, payout_date) to its "
            "column's header, or to a list of headers"
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Polling within the carrier's rate limit (carriers.services.polling): a token bucket of
    # requests, refilled at the adapter's pace, and a pause after a 429 or an outage that grows.
    poll_tokens = models.FloatField(_("poll requests available"), null=True, blank=True, editable=False)
    poll_refilled_at = models.DateTimeField(_("poll budget refilled at"), null=True, blank=True)
    poll_paused_until = models.DateTimeField(
        _("polling paused until"),
        null=True,
        blank=True,
        help_text=_("Set after the carrier refused or failed a poll; empty: polling runs"),
    )
    poll_failures = models.PositiveIntegerField(_("poll failures in a row"), default=0)
    poll_error = models.CharField(_("last poll error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("carrier account")
        verbose_name_plural = _("carrier accounts")
        ordering = ["store", "name"]
        constraints = [models.UniqueConstraint(fields=["store", "name"], name="carrier_account_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def webhook_secret_variable(self) -> str:
        return self.webhook_secret_env or f"{self.env_prefix}_WEBHOOK_SECRET"


class Shipment(models.Model):
    """A parcel on its way to the customer, as the store or the carrier reported it."""

    class CreateStatus(models.TextChoices):
        CREATED = "created", _("Created")
        UNKNOWN = "unknown", _("Unknown (to reconcile)")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="shipments", verbose_name=_("order")
    )
    account = models.ForeignKey(
        CarrierAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="shipments",
        verbose_name=_("carrier account"),
    )
    carrier = models.CharField(
        _("carrier"), max_length=100, blank=True, help_text=_("As reported, e.g. Amana, Aramex")
    )
    tracking_number = models.CharField(_("tracking number"), max_length=100, blank=True)
    tracking_url = models.URLField(_("tracking URL"), max_length=500, blank=True)
    carrier_reference = models.CharField(
        _("our reference"), max_length=100, blank=True, help_text=_("Sent to the carrier at creation")
    )
    # The last status the reporter gave, word for word: kept even when Livra cannot map it.
    reported_status = models.CharField(_("reported status"), max_length=100, blank=True)
    state = models.CharField(_("state"), max_length=30, choices=TrackingState.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=30, choices=TrackingReason.choices, blank=True)
    label_url = models.URLField(_("label URL"), max_length=500, blank=True)
    fee = models.DecimalField(_("fee"), max_digits=10, decimal_places=2, null=True, blank=True)
    cod_amount = models.DecimalField(_("COD amount"), max_digits=10, decimal_places=2, null=True, blank=True)
    cod_collected_amount = models.DecimalField(
        _("COD collected"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    cod_collected_at = models.DateTimeField(_("COD collected at"), null=True, blank=True)
    create_status = models.CharField(_("creation"), max_length=20, choices=CreateStatus.choices, blank=True)
    create_error = models.CharField(
        _("creation error"),
        max_length=300,
        blank=True,
        help_text=_("The carrier's answer when creation failed"),
    )
    attempts = models.PositiveIntegerField(_("failed attempts"), default=0)
    last_event_at = models.DateTimeField(_("last event at"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last polled at"), null=True, blank=True)
    last_webhook_at = models.DateTimeField(_("last webhook at"), null=True, blank=True)
    # When the poll sweep asks the carrier about this parcel next; empty once it is settled
    # (delivered, returned, cancelled, lost) or retired for want of news.
    next_poll_at = models.DateTimeField(_("next poll at"), null=True, blank=True)
    poll_retired_at = models.DateTimeField(
        _("polling retired at"),
        null=True,
        blank=True,
        help_text=_("No carrier news for too long: no longer polled"),
    )
    source = models.CharField(_("source"), max_length=20, help_text=_("store or carrier"))
    external_id = models.CharField(
        _("external id"), max_length=100, blank=True, help_text=_("e.g. the Shopify fulfillment id")
    )
    batch = models.ForeignKey(
        "DispatchBatch",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="shipments",
        verbose_name=_("dispatch batch"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "tracking_number"],
                condition=~models.Q(tracking_number=""),
                name="shipment_unique_tracking_per_order",
            )
        ]
        indexes = [
            models.Index(fields=["account", "tracking_number"], name="shipment_account_tracking"),
            # The poll sweep reads the due parcels of one account, oldest due first: a few index
            # pages, however many shipments are settled.
            models.Index(
                fields=["account", "next_poll_at"],
                condition=models.Q(next_poll_at__isnull=False),
                name="shipment_poll_due",
            ),
        ]

    def __str__(self) -> str:
        carrier = self.carrier or gettext("carrier?")
        tracking_number = self.tracking_number or gettext("(no tracking number)")
        return f"{carrier} {tracking_number}"


class DispatchBatch(models.Model):
    """Parcels asked of one carrier account for a selection of orders, created in the background.

    ``results``: order id (as text) → what happened to it: ``{"outcome": created | failed |
    skipped, "number", "shipment", "tracking_number", "reason" (skipped: a code), "error"
    (failed: the carrier's words), "city" (how the city was matched), "note"}``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("dispatch batch status", "Queued")
        RUNNING = "running", pgettext_lazy("dispatch batch status", "Running")
        DONE = "done", pgettext_lazy("dispatch batch status", "Done")

    account = models.ForeignKey(
        CarrierAccount,
        on_delete=models.PROTECT,
        related_name="dispatch_batches",
        verbose_name=_("carrier account"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    orders = models.ManyToManyField("orders.Order", related_name="+", verbose_name=_("orders"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(_("orders"), default=0)
    created_count = models.PositiveIntegerField(_("parcels created"), default=0)
    failed_count = models.PositiveIntegerField(pgettext_lazy("dispatch result", "failed"), default=0)
    skipped_count = models.PositiveIntegerField(pgettext_lazy("dispatch result", "skipped"), default=0)
    results = models.JSONField(_("results"), default=dict, blank=True)
    label_pdf = models.BinaryField(_("labels (PDF)"), null=True, blank=True, editable=False)
    label_error = models.CharField(_("labels error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("dispatch batch")
        verbose_name_plural = _("dispatch batches")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.account} #{self.pk}"

    @property
    def done_count(self) -> int:
        return self.created_count + self.failed_count + self.skipped_count


class StatusMapping(models.Model):
    """A carrier's raw status (folded) → normalised state and reason. Rows without an account are
    the carrier's defaults (from its adapter); an account's own row wins over them."""

    carrier = models.CharField(_("carrier"), max_length=50)
    account = models.ForeignKey(
        CarrierAccount,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="status_mappings",
        verbose_name=_("carrier account"),
        help_text=_("Empty: for every account at this carrier"),
    )
    raw_code = models.CharField(
        _("raw status"),
        max_length=200,
        help_text=_("As the carrier sends it; kept folded (lower case, no accents)"),
    )
    state = models.CharField(_("state"), max_length=30, choices=TrackingState.choices)
    reason = models.CharField(_("reason"), max_length=30, choices=TrackingReason.choices, blank=True)
    is_default = models.BooleanField(_("adapter default"), default=False, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("carrier status mapping")
        verbose_name_plural = _("carrier status mappings")
        ordering = ["carrier", "raw_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["carrier", "raw_code"],
                condition=models.Q(account__isnull=True),
                name="status_mapping_unique_per_carrier",
            ),
            models.UniqueConstraint(
                fields=["account", "raw_code"],
                condition=models.Q(account__isnull=False),
                name="status_mapping_unique_per_account",
            ),
        ]

    def __str__(self) -> str:
        # Without the raw status: the carrier's own words are shown apart, as code, not as text.
        return f"{self.carrier} → {self.get_state_display()}"


class TrackingEvent(models.Model):
    """One carrier report about one parcel, append-only: raw as sent, normalised when mapped."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        POLL = "poll", _("Poll")
        SANDBOX = "sandbox", _("Sandbox")
        MANUAL = "manual", _("Manual")

    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, related_name="tracking_events", verbose_name=_("shipment")
    )
    carrier = models.CharField(_("carrier"), max_length=50)
    dedup_key = models.CharField(
        _("deduplication key"),
        max_length=200,
        help_text=_("The carrier's event id, else a hash of the event"),
    )
    raw_code = models.CharField(_("raw status"), max_length=200)
    raw_code_folded = models.CharField(_("folded raw status"), max_length=200, db_index=True)
    raw_text = models.TextField(_("raw text"), blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), help_text=_("The carrier's time"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    location = models.CharField(_("location"), max_length=200, blank=True)
    state = models.CharField(_("state"), max_length=30, choices=TrackingState.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=30, choices=TrackingReason.choices, blank=True)
    mapped = models.BooleanField(_("mapped"), default=False, db_index=True)
    applied = models.BooleanField(_("applied to the order"), default=False)
    apply_note = models.CharField(_("why not applied"), max_length=300, blank=True)
    order_event = models.ForeignKey(
        "orders.OrderEvent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("order event"),
    )
    raw = models.JSONField(_("raw data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["carrier", "dedup_key"], name="tracking_event_unique_per_carrier")
        ]

    def __str__(self) -> str:
        return f"{self.carrier} #{self.pk}"

    @property
    def unmapped(self) -> bool:
        return not self.mapped


class CarrierCity(models.Model):
    """A city (or zone) a carrier serves, as its list names it: parcels are sent with its id."""

    carrier = models.CharField(_("carrier"), max_length=50)
    carrier_city_id = models.CharField(_("carrier's city id"), max_length=100)
    name = models.CharField(_("name"), max_length=200)
    zone = models.CharField(_("zone"), max_length=200, blank=True)
    # ``carriers.services.cities.city_key`` of the name: what matching compares.
    name_key = models.CharField(_("matching key"), max_length=200, db_index=True, editable=False)
    aliases = models.JSONField(
        _("other spellings"),
        default=list,
        blank=True,
        help_text=_("Other ways customers write it, in Arabic or French: a JSON list of names"),
    )
    active = models.BooleanField(_("active"), default=True, help_text=_("Still in the carrier's list"))
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)

    class Meta:
        verbose_name = _("carrier city")
        verbose_name_plural = _("carrier cities")
        ordering = ["carrier", "name"]
        constraints = [
            models.UniqueConstraint(fields=["carrier", "carrier_city_id"], name="carrier_city_unique_id")
        ]

    def __str__(self) -> str:
        return self.name


class CityCorrection(models.Model):
    """An agent's correction: in this store, a customer's city typed this way is that carrier city."""

    store = models.ForeignKey(
        "orders.Store", on_delete=models.CASCADE, related_name="city_corrections", verbose_name=_("store")
    )
    carrier = models.CharField(_("carrier"), max_length=50, editable=False)
    typed = models.CharField(_("city as typed"), max_length=200)
    typed_key = models.CharField(_("matching key"), max_length=200, editable=False)
    city = models.ForeignKey(
        CarrierCity, on_delete=models.CASCADE, related_name="corrections", verbose_name=_("carrier city")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("city correction")
        verbose_name_plural = _("city corrections")
        ordering = ["store", "typed"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "carrier", "typed_key"], name="city_correction_unique_per_store"
            )
        ]

    def __str__(self) -> str:
        return f"{self.typed} → {self.city}"


# --- the sandbox carrier ---------------------------------------------------------------------------
class SandboxWalkSettings(models.Model):
    """How the sandbox carrier walks an account's parcels: how fast, and how many go wrong.

    Shares are percentages of the parcels planned after the change (a parcel's life is drawn when
    it is first picked up)."""

    account = models.OneToOneField(
        CarrierAccount,
        on_delete=models.CASCADE,
        related_name="sandbox_walk_settings",
        verbose_name=_("carrier account"),
    )
    minutes_between_steps = models.PositiveIntegerField(
        _("minutes between steps"),
        default=1,
        help_text=_("How long a parcel stays at each step of its life (the demo's default: 1)"),
    )
    transit_hops = models.PositiveIntegerField(
        _("transit hops"), default=2, help_text=_("Hubs a parcel passes through between pick-up and delivery")
    )
    failed_attempt_share = models.PositiveIntegerField(
        _("failed first attempts (%)"),
        default=20,
        help_text=_("Parcels whose first delivery attempt fails: customer unreachable or postponed"),
    )
    refused_share = models.PositiveIntegerField(
        _("refused at the door (%)"), default=8, help_text=_("Parcels the customer refuses: sent back")
    )
    returned_after_failures_share = models.PositiveIntegerField(
        _("returned after failed attempts (%)"),
        default=30,
        help_text=_("Of the parcels whose first attempt fails, those never delivered and sent back"),
    )
    lost_share = models.PositiveIntegerField(_("lost (%)"), default=1, help_text=_("Parcels lost in transit"))
    max_attempts = models.PositiveIntegerField(
        _("delivery attempts"), default=3, help_text=_("Attempts before a parcel is sent back")
    )

    class Meta:
        verbose_name = _("sandbox walk settings")
        verbose_name_plural = _("sandbox walk settings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(failed_attempt_share__lte=100)
                & models.Q(refused_share__lte=100)
                & models.Q(returned_after_failures_share__lte=100)
                & models.Q(lost_share__lte=100),
                name="sandbox_walk_shares_are_percentages",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    lost_share__lte=100 - models.F("refused_share") - models.F("failed_attempt_share")
                ),
                name="sandbox_walk_shares_at_most_all",
                violation_error_message=_(
                    "The shares of lost, refused and failed first attempts cannot add up to more than 100."
                ),
            ),
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="sandbox_walk_one_attempt"),
        ]

    def __str__(self) -> str:
        return str(self.account)


class SandboxParcel(models.Model):
    """A parcel at the sandbox carrier: what a real carrier keeps on its side, kept in Livra's
    database so that the web, the worker and beat (separate processes) see the same parcels."""

    account = models.ForeignKey(
        CarrierAccount,
        on_delete=models.CASCADE,
        related_name="sandbox_parcels",
        verbose_name=_("carrier account"),
    )
    tracking_number = models.CharField(_("tracking number"), max_length=30, unique=True)
    reference = models.CharField(_("our reference"), max_length=100)
    request = models.JSONField(_("parcel request"), default=dict)
    cancelled = models.BooleanField(_("cancelled"), default=False)
    # The raw codes still to come (drawn from the walk's rates when first walked); null: not drawn.
    plan = models.JSONField(_("rest of its life"), null=True, blank=True)
    next_step_at = models.DateTimeField(
        _("next step at"), null=True, blank=True, help_text=_("Empty: its walk is over")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox parcel")
        verbose_name_plural = _("sandbox parcels")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "reference"], name="sandbox_parcel_unique_reference")
        ]
        indexes = [
            models.Index(
                fields=["next_step_at"],
                condition=models.Q(next_step_at__isnull=False),
                name="sandbox_parcel_due",
            )
        ]

    def __str__(self) -> str:
        return self.tracking_number


class SandboxParcelEvent(models.Model):
    """What the sandbox carrier reported about a parcel, and whether Livra's webhook has it yet."""

    parcel = models.ForeignKey(
        SandboxParcel, on_delete=models.CASCADE, related_name="events", verbose_name=_("sandbox parcel")
    )
    sequence = models.PositiveIntegerField(_("sequence"))
    raw_code = models.CharField(_("raw status"), max_length=50)
    raw_text = models.CharField(_("raw text"), max_length=200, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    # Null until Livra's carrier webhook answered 2xx: the walk posts it again until then.
    posted_at = models.DateTimeField(_("posted at"), null=True, blank=True)
    post_attempts = models.PositiveIntegerField(_("post attempts"), default=0)
    post_error = models.CharField(_("last post error"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("sandbox parcel event")
        verbose_name_plural = _("sandbox parcel events")
        ordering = ["parcel", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["parcel", "sequence"], name="sandbox_parcel_event_unique_sequence"
            )
        ]
        indexes = [
            models.Index(
                fields=["parcel"], condition=models.Q(posted_at__isnull=True), name="sandbox_event_unposted"
            )
        ]

    def __str__(self) -> str:
        return f"{self.parcel_id} #{self.sequence}"

    @property
    def event_id(self) -> str:
        return f"{self.parcel.tracking_number}-{self.sequence}"


class RemittanceStatus(models.TextChoices):
    """A delivered COD parcel's cash, against what the carrier's statements say it remitted."""

    MISSING = "missing", _("Missing")
    SHORT = "short", _("Short")
    OVER = "over", _("Over")
    REMITTED = "remitted", _("Remitted")


class RemittanceStatement(models.Model):
    """A carrier's COD remittance statement as uploaded: the file's fingerprint, the columns read
    and what its lines came to. The same file (same bytes) is imported once per account."""

    account = models.ForeignKey(
        CarrierAccount,
        on_delete=models.PROTECT,
        related_name="remittance_statements",
        verbose_name=_("carrier account"),
    )
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    # Which header of the file was read for which field ({"tracking_number": "Code d'envoi", ...}).
    column_mapping = models.JSONField(_("columns read"), default=dict, blank=True)
    line_count = models.PositiveIntegerField(_("lines"), default=0)
    matched_count = models.PositiveIntegerField(_("matched"), default=0)
    unknown_count = models.PositiveIntegerField(_("unknown tracking numbers"), default=0)
    duplicate_count = models.PositiveIntegerField(_("duplicate lines"), default=0)
    invalid_count = models.PositiveIntegerField(_("unreadable lines"), default=0)
    collected_total = models.DecimalField(_("collected"), max_digits=14, decimal_places=2, default=0)
    fee_total = models.DecimalField(_("fees"), max_digits=14, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("remittance statement")
        verbose_name_plural = _("remittance statements")
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "sha256"], name="remittance_statement_unique_file")
        ]
        permissions = [
            ("import_remittance", _("Can import COD remittance statements")),
            ("view_remittance", _("Can view the COD remittance reconciliation")),
        ]

    def __str__(self) -> str:
        return self.file_name


class RemittanceLine(models.Model):
    """One line of a remittance statement: the cash the carrier says it collected for a parcel."""

    class Result(models.TextChoices):
        MATCHED = "matched", _("Matched")
        UNKNOWN = "unknown", _("Unknown tracking number")
        DUPLICATE = "duplicate", _("Duplicate line")
        INVALID = "invalid", _("Unreadable line")

    statement = models.ForeignKey(
        RemittanceStatement, on_delete=models.CASCADE, related_name="lines", verbose_name=_("statement")
    )
    # The statement's account, repeated so that a line already counted is found per account.
    account = models.ForeignKey(
        CarrierAccount, on_delete=models.PROTECT, related_name="+", verbose_name=_("carrier account")
    )
    row_number = models.PositiveIntegerField(_("row"))
    tracking_number = models.CharField(_("tracking number"), max_length=100, blank=True)
    shipment = models.ForeignKey(
        Shipment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="remittance_lines",
        verbose_name=_("shipment"),
    )
    collected_amount = models.DecimalField(
        _("collected amount"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    fee = models.DecimalField(_("fee"), max_digits=12, decimal_places=2, default=0)
    payout_date = models.DateField(_("payout date"), null=True, blank=True)
    raw = models.JSONField(_("raw row"), default=dict, blank=True)
    result = models.CharField(_("result"), max_length=20, choices=Result.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    # sha256 of account | tracking number | payout date | amount: the same payout seen again (a
    # statement re-exported with other bytes) is kept as a duplicate and counted once.
    line_key = models.CharField(_("line key"), max_length=64, editable=False)

    class Meta:
        verbose_name = _("remittance line")
        verbose_name_plural = _("remittance lines")
        ordering = ["statement", "row_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "line_key"],
                condition=models.Q(result__in=["matched", "unknown"]),
                name="remittance_line_counted_once",
            )
        ]
        indexes = [models.Index(fields=["shipment", "result"], name="remittance_line_shipment")]

    def __str__(self) -> str:
        return f"{self.statement} #{self.row_number}"
