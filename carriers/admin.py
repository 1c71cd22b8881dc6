"""Carriers in admin: accounts, shipments with their tracking events, the status tables, and the
raw statuses no table maps yet. Thin: writes go through carriers.services."""

import json
import re

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, Min
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from carriers.adapters import CarrierError, adapter_class, adapter_names, fold, webhook_path
from carriers.models import (
    CarrierAccount,
    CarrierCity,
    CityCorrection,
    SandboxWalkSettings,
    Shipment,
    StatusMapping,
    TrackingEvent,
)
from carriers.remittance_admin import shipment_remittance_summary  # also registers its admins
from carriers.services import (
    carrier_account_env_status,
    city_correction_set,
    city_key,
    shipment_cancel,
    status_mapping_set,
    status_mappings_sync,
)
from carriers.services.remittance_files import FIELDS as REMITTANCE_FIELDS
from carriers.services.shipments import carrier_account_suggestions
from orders.admin import ReadOnlyAdminMixin, admin_datetime
from orders.admin_scoping import StoreScopedAdmin, StoreScopedInline
from orders.models import Order
from orders.stored_words import stored_words

ENV_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9]$")
# Who reported a shipment (Shipment.source), as people read it.
SHIPMENT_SOURCES = {"store": _("store"), "carrier": _("carrier"), "agent": _("agent")}


def as_code(text: str) -> str:
    """A carrier's raw status, shown as the code it is (in the carrier's words, not the page's)."""
    return format_html('<code dir="ltr">{}</code>', text) if text else "-"


def carrier_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in adapter_names()]


# --- accounts --------------------------------------------------------------------------------
class CarrierAccountForm(forms.ModelForm):
    carrier = forms.ChoiceField(label=capfirst(CarrierAccount._meta.get_field("carrier").verbose_name))

    # No Meta: the admin builds it for CarrierAccount.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["carrier"].choices = carrier_choices()
        self.fields["env_prefix"].help_text = gettext(
            "Only a prefix, never a secret: credentials are read from environment variables named "
            "PREFIX_NAME (e.g. LIVRA_SENDIT_PUBLIC_KEY) when Livra calls the carrier, and are never "
            "stored or displayed here."
        )

    def clean_remittance_columns(self):
        columns = self.cleaned_data.get("remittance_columns") or {}
        known = set(REMITTANCE_FIELDS)
        well_formed = isinstance(columns, dict) and all(
            field in known
            and (
                isinstance(header, str)
                or (isinstance(header, list) and all(isinstance(h, str) for h in header))
            )
            for field, header in columns.items()
        )
        if not well_formed:
            raise ValidationError(
                gettext(
                    "Give a JSON object whose keys are among %(fields)s and whose values are column headers."
                )
                % {"fields": ", ".join(REMITTANCE_FIELDS)}
            )
        return columns

    def clean_env_prefix(self):
        prefix = self.cleaned_data.get("env_prefix", "").strip()
        if not ENV_PREFIX.match(prefix):
            raise ValidationError(
                gettext(
                    "Use an environment variable prefix in capitals, digits and underscores, "
                    "e.g. LIVRA_SENDIT."
                )
            )
        return prefix


class SandboxWalkSettingsInline(StoreScopedInline, admin.StackedInline):
    """How fast the sandbox carrier walks the account's parcels and how many go wrong."""

    model = SandboxWalkSettings
    fields = [
        "minutes_between_steps",
        "transit_hops",
        "failed_attempt_share",
        "refused_share",
        "returned_after_failures_share",
        "lost_share",
        "max_attempts",
    ]
    extra = 1
    max_num = 1
    min_num = 0
    can_delete = False


@admin.register(CarrierAccount)
class CarrierAccountAdmin(StoreScopedAdmin, admin.ModelAdmin):
    form = CarrierAccountForm
    list_display = ["name", "store", "carrier", "env_prefix", "enabled"]
    list_filter = ["carrier", "enabled", "store"]
    list_select_related = ["store"]
    search_fields = ["name", "store__name", "carrier"]
    readonly_fields = [
        "environment",
        "webhook_url",
        "poll_paused_until",
        "poll_failures",
        "poll_error",
        "poll_refilled_at",
    ]
    inlines = [SandboxWalkSettingsInline]

    def get_inlines(self, request, obj):
        # The walk's rates belong to sandbox accounts only (saved first: the carrier is chosen then).
        return self.inlines if obj is not None and obj.carrier == "sandbox" else []

    @admin.display(description=_("webhook URL"))
    def webhook_url(self, account):
        """Where the carrier's panel should push (the secret, when the URL carries it, is not shown)."""
        if account is None or not account.pk:
            return "-"
        try:
            cls = adapter_class(account.carrier)
        except Exception:  # an adapter no longer registered
            return "-"
        if not cls.supports_webhooks:
            return gettext("This carrier has no webhooks: its parcels are polled.")
        path = reverse("carriers:carrier-webhook", args=[webhook_path(cls), account.pk])
        url = settings.LIVRA_PUBLIC_URL.rstrip("/") + path
        token_param = getattr(cls, "webhook_token_in_query", "")
        if token_param:
            url += f"?{token_param}=<{account.webhook_secret_variable}>"
        return format_html('<code dir="ltr">{}</code>', url)

    @admin.display(description=_("environment variables"))
    def environment(self, account):
        if account is None or not account.pk:
            return "-"
        try:
            status = carrier_account_env_status(account)
        except Exception:  # an adapter no longer registered: nothing to check against
            return "-"
        return format_html_join(
            "",
            '<div><code dir="ltr">{}</code>: {}</div>',
            ((name, gettext("set") if is_set else gettext("not set")) for name, is_set in status.items()),
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        status_mappings_sync(obj.carrier)  # the carrier's default table, if it is not there yet


# --- shipments and their events ------------------------------------------------------------------
class TrackingEventInline(StoreScopedInline, ReadOnlyAdminMixin, admin.TabularInline):
    """A shipment's carrier reports, oldest first: append-only."""

    model = TrackingEvent
    fields = readonly_fields = (
        "when",
        "raw_status",
        "raw_text",
        "location",
        "state",
        "reason",
        "mapped",
        "applied",
        "note",
        "source",
    )
    extra = 0
    can_delete = False

    @admin.display(description=_("when"))
    def when(self, event):
        return admin_datetime(event.occurred_at)

    @admin.display(description=_("why not applied"))
    def note(self, event):
        return stored_words(event.apply_note) or "-"

    @admin.display(description=_("raw status"))
    def raw_status(self, event):
        return as_code(event.raw_code)


@admin.register(Shipment)
class ShipmentAdmin(StoreScopedAdmin, admin.ModelAdmin):
    """Read-mostly: shipments are written by stores' fulfilments and by carriers."""

    store_lookups = ("order__store",)
    list_display = ["__str__", "order", "account", "state", "reason", "create_status", "last_event_at"]
    list_filter = ["state", "create_status", "account"]
    list_select_related = ["order__store", "account"]
    search_fields = ["tracking_number", "carrier_reference", "order__number"]
    inlines = [TrackingEventInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order",
                    "account",
                    "carrier",
                    "tracking_number",
                    "tracking_url",
                    "carrier_reference",
                ]
            },
        ),
        (
            _("Tracking"),
            {
                "fields": [
                    "state",
                    "reason",
                    "reported_status_shown",
                    "attempts",
                    "create_status",
                    "create_error_shown",
                ]
            },
        ),
        (_("Money"), {"fields": ["fee", "cod_amount", "cod_collected_amount", "cod_collected_at"]}),
        (
            _("News"),
            {
                "fields": [
                    "last_event_at",
                    "last_polled_at",
                    "last_webhook_at",
                    "next_poll_at",
                    "poll_retired_at",
                ]
            },
        ),
        (
            _("Label"),
            {"fields": ["label_url", "source_shown", "external_id", "batch", "created_at", "updated_at"]},
        ),
        (_("COD remittance"), {"fields": ["remittance"]}),
    ]
    actions = ["cancel_at_carrier"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Shipment._meta.fields] + [
            "reported_status_shown",
            "source_shown",
            "create_error_shown",
            "remittance",
        ]

    @admin.display(description=_("COD remittance"))
    def remittance(self, shipment):
        return shipment_remittance_summary(shipment)

    @admin.display(description=_("creation error"))
    def create_error_shown(self, shipment):
        # The technical trail (the carrier's or the adapter's answer) stays English.
        return (
            format_html('<span lang="en">{}</span>', shipment.create_error) if shipment.create_error else "-"
        )

    @admin.display(description=_("reported status"))
    def reported_status_shown(self, shipment):
        return as_code(shipment.reported_status)

    @admin.display(description=_("source"))
    def source_shown(self, shipment):
        return SHIPMENT_SOURCES.get(shipment.source, shipment.source)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Cancel parcel at the carrier"), permissions=["change"])
    def cancel_at_carrier(self, request, queryset):
        """Each created parcel cancelled at its carrier; a refusal is said and changes nothing."""
        cancelled = 0
        for shipment in queryset.select_related("account"):
            if shipment.account is None or shipment.create_status != Shipment.CreateStatus.CREATED:
                messages.warning(
                    request,
                    gettext("%(shipment)s was not created by Livra at a carrier: nothing to cancel.")
                    % {"shipment": shipment},
                )
                continue
            try:
                shipment_cancel(shipment)
            except CarrierError as error:
                messages.error(
                    request,
                    format_html(
                        '{} <span lang="en" dir="ltr">{}</span>',
                        gettext("The carrier refused to cancel %(shipment)s:") % {"shipment": shipment},
                        error.text or str(error),
                    ),
                )
            else:
                cancelled += 1
        if cancelled:
            messages.success(
                request, gettext("Parcels cancelled at the carrier: %(count)d.") % {"count": cancelled}
            )


class ShipmentInline(StoreScopedInline, ReadOnlyAdminMixin, admin.StackedInline):
    """The order page's parcels, each with its carrier's reports."""

    model = Shipment
    fields = readonly_fields = ("shipment", "state", "reason", "attempts", "cod_collected_amount", "events")
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tracking_events")

    @admin.display(description=_("shipment"))
    def shipment(self, shipment):
        url = reverse("admin:carriers_shipment_change", args=[shipment.pk])
        return format_html('<a href="{}" dir="ltr">{}</a>', url, shipment)

    @admin.display(description=_("tracking events"))
    def events(self, shipment):
        rows = [
            (
                admin_datetime(event.occurred_at),
                event.raw_code,
                event.get_state_display() or gettext("unmapped"),
                event.get_reason_display(),
            )
            for event in shipment.tracking_events.all()
        ]
        if not rows:
            return "-"
        return format_html(
            '<table class="tracking-events">{}</table>',
            format_html_join(
                "", '<tr><td>{}</td><td><code dir="ltr">{}</code></td><td>{}</td><td>{}</td></tr>', rows
            ),
        )


@admin.register(TrackingEvent)
class TrackingEventAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every carrier report, as it came: append-only (nothing is changed or deleted here)."""

    store_lookups = ("shipment__order__store",)
    list_display = [
        "occurred_at",
        "shipment",
        "carrier",
        "raw_status",
        "state",
        "reason",
        "mapped",
        "applied",
        "source",
    ]
    fields = [
        "shipment",
        "carrier",
        "raw_status",
        "raw_text",
        "occurred_at",
        "received_at",
        "source",
        "location",
        "state",
        "reason",
        "mapped",
        "applied",
        "note",
        "order_event_shown",
        "dedup_key",
        "raw_shown",
    ]
    readonly_fields = fields
    list_filter = ["mapped", "applied", "state", "source", "carrier"]
    list_select_related = ["shipment"]
    search_fields = ["raw_code", "shipment__tracking_number"]
    date_hierarchy = "occurred_at"
    actions = ["map_status"]

    @admin.display(description=_("raw status"))
    def raw_status(self, event):
        return as_code(event.raw_code)

    @admin.display(description=_("why not applied"))
    def note(self, event):
        return stored_words(event.apply_note) or "-"

    @admin.display(description=_("order event"))
    def order_event_shown(self, event):
        if event.order_event is None:
            return "-"
        order_event = event.order_event
        return (
            f"{order_event.get_from_status_display() or '-'} → {order_event.get_to_status_display() or '-'}"
        )

    @admin.display(description=_("raw data"))
    def raw_shown(self, event):
        return format_html('<pre dir="ltr">{}</pre>', json.dumps(event.raw, indent=2, ensure_ascii=False))

    @admin.action(description=_("Map this raw status…"))
    def map_status(self, request, queryset):
        event = queryset.filter(mapped=False).first() or queryset.first()
        return HttpResponseRedirect(status_mapping_add_url(event.carrier, event.raw_code_folded))


# --- status tables ---------------------------------------------------------------------------
def status_mapping_add_url(carrier: str, raw_code: str) -> str:
    query = urlencode({"carrier": carrier, "raw_code": raw_code})
    return f"{reverse('admin:carriers_statusmapping_add')}?{query}"


class StatusMappingForm(forms.ModelForm):
    carrier = forms.ChoiceField(label=capfirst(StatusMapping._meta.get_field("carrier").verbose_name))

    # No Meta: the admin builds it for StatusMapping.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["carrier"].choices = carrier_choices()

    def clean_raw_code(self):
        return fold(self.cleaned_data.get("raw_code", ""))


@admin.register(StatusMapping)
class StatusMappingAdmin(StoreScopedAdmin, admin.ModelAdmin):
    """The carriers' raw statuses and what they mean. Rows without an account are the carrier's
    defaults (every store's: members read them, superusers edit them); saving one re-applies the
    events that waited for it."""

    form = StatusMappingForm
    store_lookups = ("account__store",)
    shared_rows_lookup = "account"
    # A store's own rows first, then every carrier's defaults (hundreds of them once all adapters are in).
    ordering = [F("account").asc(nulls_last=True), "carrier", "raw_code"]
    list_display = ["raw_status", "carrier", "account", "state", "reason", "is_default"]
    list_display_links = ["raw_status"]
    list_filter = ["carrier", "state", "is_default", "account"]
    list_select_related = ["account"]
    search_fields = ["raw_code"]
    change_list_template = "admin/carriers/statusmapping/change_list.html"

    @admin.display(description=_("raw status"), ordering="raw_code")
    def raw_status(self, mapping):
        return as_code(mapping.raw_code)

    def save_model(self, request, obj, form, change):
        # Through the service, which also applies the events waiting for this raw status.
        if change and {"carrier", "account", "raw_code"} & set(form.changed_data):
            StatusMapping.objects.filter(pk=obj.pk).delete()
            obj.pk = None
        saved, reapplied = status_mapping_set(
            obj.carrier, obj.raw_code, obj.state, obj.reason, account=obj.account
        )
        obj.pk = saved.pk
        if reapplied:
            messages.info(
                request, gettext("%(count)d waiting tracking events were applied.") % {"count": reapplied}
            )

    def get_urls(self):
        return [
            path(
                "unmapped/",
                self.admin_site.admin_view(self.unmapped_view),
                name="carriers_statusmapping_unmapped",
            ),
            *super().get_urls(),
        ]

    def unmapped_view(self, request):
        """The raw statuses carriers sent that no table maps: each waits for a mapping."""
        event_admin = self.admin_site.get_model_admin(TrackingEvent)
        if not event_admin.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        rows = (
            event_admin.get_queryset(request)
            .filter(mapped=False)
            .values("carrier", "raw_code_folded")
            .annotate(
                count=Count("id"),
                first_seen=Min("received_at"),
                last_seen=Max("received_at"),
                example=Max("raw_text"),
                raw_code=Max("raw_code"),
            )
            .order_by("-count", "carrier", "raw_code_folded")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Unmapped carrier statuses"),
            "opts": self.opts,
            "rows": [
                {**row, "map_url": status_mapping_add_url(row["carrier"], row["raw_code_folded"])}
                for row in rows
            ],
        }
        return TemplateResponse(request, "admin/carriers/statusmapping/unmapped.html", context)


# Orders never imports carriers (carriers → orders.services), so carriers adds its parcels to
# the order page itself, as messaging adds its messages.
_order_admin = admin.site.get_model_admin(Order)
_order_admin.inlines = [*_order_admin.inlines, ShipmentInline]
# The "Mark shipped" form suggests the store's carriers.
_order_admin.ship_carrier_suggestions = lambda order: carrier_account_suggestions(order.store_id)


# --- cities ----------------------------------------------------------------------------------
@admin.register(CarrierCity)
class CarrierCityAdmin(StoreScopedAdmin, admin.ModelAdmin):
    """Every carrier's list, shared by every store: superusers keep the other spellings."""

    store_lookups = ()
    list_display = ["name", "carrier", "carrier_city_id", "zone", "active"]
    list_filter = ["carrier", "active"]
    search_fields = ["name", "carrier_city_id", "zone"]
    readonly_fields = ["carrier", "carrier_city_id", "name", "zone", "active", "synced_at"]

    def has_add_permission(self, request):
        return False  # cities come from the carrier's list (carrier_cities_sync)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        obj.name_key = city_key(obj.name)
        super().save_model(request, obj, form, change)


class CityCorrectionForm(forms.ModelForm):
    # No Meta: the admin builds it for CityCorrection.
    def clean_typed(self):
        typed = self.cleaned_data.get("typed", "").strip()
        if not city_key(typed):
            raise ValidationError(gettext("Type the city as the customer wrote it."))
        return typed


@admin.register(CityCorrection)
class CityCorrectionAdmin(StoreScopedAdmin, admin.ModelAdmin):
    """An agent's corrections: a city typed this way, in this store, is that carrier city."""

    form = CityCorrectionForm
    list_display = ["typed", "city", "carrier", "store", "created_by", "created_at"]
    list_filter = ["carrier", "store"]
    list_select_related = ["city", "store", "created_by"]
    search_fields = ["typed", "city__name"]
    fields = ["store", "typed", "city"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "city":
            # The carriers' cities are every store's (public lists), not one store's rows.
            kwargs["queryset"] = CarrierCity.objects.filter(active=True).order_by("carrier", "name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        saved = city_correction_set(obj.store, obj.typed, obj.city, actor=request.user)
        obj.pk = saved.pk


# Dispatch from the order list (its actions and the batches' pages) has its own module.
from carriers import admin_dispatch  # noqa: E402, F401
