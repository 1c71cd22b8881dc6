"""The ops agents' admin: order list, order page with its timeline, and status buttons.

Status is never a form field here. The buttons on the order page post to ``transition_view``,
which calls ``orders.services.order_transition`` (the one write path for status) and shows the
domain error when the change is refused. django-fsm's ``FSMAdminMixin`` is deliberately not
used: its own apply path would bypass the service, its lock and its audit row.
"""

import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from orders.admin_scoping import StoreScopedAdmin, StoreScopedInline
from orders.errors import OrderTransitionError
from orders.models import Customer, Order, OrderEvent, OrderItem, Store
from orders.phones import normalize_phone
from orders.selectors import order_available_transitions, order_list_for_admin
from orders.services import order_create, order_ship, order_transition
from orders.stored_words import stored_words
from orders.transitions import TRANSITIONS_BY_NAME, OrderStatus

S = OrderStatus
AMBER, BLUE, INDIGO, GREEN, RED, GREY = "#b7791f", "#2b6cb0", "#4c51bf", "#2f855a", "#c53030", "#718096"
STATUS_COLOURS: dict[str, str] = {
    S.PLACED: AMBER,
    S.AWAITING_CONFIRMATION: AMBER,
    S.CONFIRMED: BLUE,
    S.PROCESSING: BLUE,
    S.SHIPPED: INDIGO,
    S.IN_TRANSIT: INDIGO,
    S.OUT_FOR_DELIVERY: INDIGO,
    S.DELIVERED: GREEN,
    S.DELIVERY_FAILED: RED,
    S.RTO_INITIATED: RED,
    S.RETURNED: RED,
    S.CANCELLED: GREY,
    S.REFUNDED: GREY,
}
DEFAULT_PHONE_REGION = "MA"
# Only terms made of phone characters are worth parsing as a phone number.
PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{6,}$")


def status_badge(order: Order) -> str:
    colour = STATUS_COLOURS.get(order.status, GREY)
    # inline-block: a long status ("Return to origin initiated") wraps inside its badge in a
    # narrow list column rather than widening the column.
    return format_html(
        '<span class="order-status-badge" style="background:{};color:#fff;padding:2px 8px;'
        'border-radius:10px;display:inline-block">{}</span>',
        colour,
        order.get_status_display(),
    )


def admin_datetime(value) -> str:
    """A moment as the admin shows it: in the active time zone, in the active language's
    DATETIME_FORMAT (no seconds, no microseconds); the exact second in its tooltip and its
    ``datetime`` attribute."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(timespec="seconds"),
        local.isoformat(sep=" ", timespec="seconds"),
        formats.date_format(local, "DATETIME_FORMAT"),
    )


def phone_search_candidates(search_term: str) -> set[str]:
    """The E.164 forms ``search_term`` may stand for, read with every store's phone region.

    Agents type numbers the way customers say them (``0612345678``); customers are stored in
    E.164 (``+212612345678``), which a substring search would miss.
    """
    term = search_term.strip()
    if not PHONE_LIKE.match(term):
        return set()
    regions = {DEFAULT_PHONE_REGION, *Store.objects.values_list("default_phone_region", flat=True).distinct()}
    return {phone for region in regions if (phone := normalize_phone(term, region))}


class PhoneSearchMixin:
    """Adds matches on ``phone_search_field`` for a search term typed as a local phone number."""

    phone_search_field = "phone"

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        phones = phone_search_candidates(search_term)
        if phones:
            results |= queryset.filter(**{f"{self.phone_search_field}__in": phones})
        return results, may_have_duplicates


class ReadOnlyAdminMixin:
    """Visible to whoever may view the rows; nobody adds, changes or deletes them here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Customer --------------------------------------------------------------------------------
class CustomerAdminForm(forms.ModelForm):
    # No Meta: the admin builds it from CustomerAdmin's fields.
    def clean(self):
        cleaned = super().clean()
        store = cleaned.get("store") or getattr(self.instance, "store", None)
        phone_raw = cleaned.get("phone_raw")
        if store is None or not phone_raw:
            return cleaned
        # The E.164 phone is derived on save, so the (store, phone) constraint cannot be
        # checked by the form itself; catch the clash here rather than as a database error.
        phone = normalize_phone(phone_raw, store.default_phone_region)
        if phone and Customer.objects.filter(store=store, phone=phone).exclude(pk=self.instance.pk).exists():
            self.add_error(
                "phone_raw",
                gettext("Another customer of %(store)s already has the number %(phone)s.")
                % {"store": store, "phone": phone},
            )
        return cleaned


class PhoneReadableFilter(admin.SimpleListFilter):
    """Customers whose number could not be read (kept as typed): nobody can text or call them
    until someone fixes it."""

    title = _("phone")
    parameter_name = "phone"

    def lookups(self, request, model_admin):
        return [("unreadable", _("Unreadable (kept as typed)")), ("missing", _("None given"))]

    def queryset(self, request, queryset):
        if self.value() == "unreadable":
            return queryset.filter(phone="").exclude(phone_raw="")
        if self.value() == "missing":
            return queryset.filter(phone_raw="")
        return queryset


@admin.register(Customer)
class CustomerAdmin(StoreScopedAdmin, PhoneSearchMixin, admin.ModelAdmin):
    form = CustomerAdminForm
    list_display = ["name", "phone_e164", "phone_raw", "email", "store", "language", "created_at"]
    list_filter = ["store", PhoneReadableFilter, "language"]
    list_select_related = ["store"]
    search_fields = ["name", "phone", "phone_raw", "email"]
    ordering = ["-pk"]  # newest first, in the list and in the order form's customer search alike
    fields = ["store", "name", "phone_raw", "phone_e164", "email", "language", "created_at", "updated_at"]
    readonly_fields = ["phone_e164", "created_at", "updated_at"]

    @admin.display(description=_("phone (E.164)"), ordering="phone")
    def phone_e164(self, obj):
        return obj.phone or gettext("invalid number")

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("store")  # a customer's orders belong to its store
        return readonly


# --- Order -----------------------------------------------------------------------------------
class OrderItemInline(StoreScopedInline, admin.TabularInline):
    model = OrderItem
    fields = ["sku", "title", "quantity", "unit_price", "line_total"]
    readonly_fields = ["line_total"]
    extra = 0

    @admin.display(description=_("line total"))
    def line_total(self, obj):
        return obj.line_total if obj.pk else "-"


class OrderEventInline(StoreScopedInline, ReadOnlyAdminMixin, admin.TabularInline):
    """The status timeline. The audit trail is append-only: nothing here can be added or changed."""

    model = OrderEvent
    verbose_name = _("timeline event")
    verbose_name_plural = _("timeline")
    fields = readonly_fields = ("when", "type", "from_to", "source", "actor", "reason_shown")
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("reason"))
    def reason_shown(self, event):
        return stored_words(event.reason)

    @admin.display(description=_("when"))
    def when(self, event):
        return admin_datetime(event.created_at)

    @admin.display(description=_("from → to"))
    def from_to(self, event):
        if not (event.from_status or event.to_status):
            return "-"  # an event that changed no status (a rule's message, a note)
        return f"{event.get_from_status_display() or '-'} → {event.get_to_status_display() or '-'}"


class OrderAdminForm(forms.ModelForm):
    # No Meta: the admin builds it from OrderAdmin's fieldsets.
    def clean(self):
        cleaned = super().clean()
        store, customer = cleaned.get("store"), cleaned.get("customer")
        if store is not None and customer is not None and customer.store_id != store.pk:
            self.add_error(
                "customer",
                gettext("%(customer)s is a customer of %(customer_store)s, not of %(store)s.")
                % {"customer": customer, "customer_store": customer.store, "store": store},
            )
        return cleaned


class ShipFormFields(forms.Form):
    """What the "Mark shipped" button sends besides the reason: the parcel, all optional."""

    carrier = forms.CharField(label=_("carrier"), max_length=100, required=False)
    tracking_number = forms.CharField(label=_("tracking number"), max_length=100, required=False)
    tracking_url = forms.URLField(
        label=_("tracking URL"), max_length=500, required=False, assume_scheme="https"
    )


@admin.register(Order)
class OrderAdmin(StoreScopedAdmin, PhoneSearchMixin, admin.ModelAdmin):
    form = OrderAdminForm
    phone_search_field = "customer__phone"
    change_form_template = "admin/orders/order/change_form.html"
    # Six short-headed columns that fit beside the filters and the menu down to a 1280 px wide
    # window: the store goes under the order number, the phone under the customer's name, and
    # long values wrap (a date column of Django's own would not).
    list_display = ["order_column", "customer_column", "payment", "total", "status_badge", "placed"]
    list_display_links = ["order_column"]
    list_filter = ["status", "store", "payment_method", ("placed_at", admin.DateFieldListFilter)]
    search_fields = ["number", "external_id", "customer__name", "customer__phone", "customer__email"]
    search_help_text = _("Order number, store order id, customer name, phone (as typed) or e-mail.")
    date_hierarchy = "placed_at"
    autocomplete_fields = ["customer"]
    inlines = [OrderItemInline, OrderEventInline]
    fieldsets = [
        (None, {"fields": ["store", "number", "external_id", "customer", "placed_at"]}),
        (_("Status"), {"fields": ["status", "status_version", "status_changed_at"]}),
        (_("Payment"), {"fields": ["payment_method", "currency", "total_amount", "cod_amount"]}),
        (_("Delivery"), {"fields": ["shipping_address", "shipping_city", "notes", "tags"]}),
        (
            pgettext_lazy("admin section: when the row was made and last changed", "Record"),
            {"fields": ["created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]
    # Status is written only by order_transition (the buttons): never an editable field.
    readonly_fields = ["status", "status_version", "status_changed_at", "created_at", "updated_at"]
    # What the store platform said the order is; fixed once the order exists.
    readonly_once_created = [
        "store",
        "number",
        "external_id",
        "customer",
        "payment_method",
        "currency",
        "placed_at",
    ]

    # --- list ----------------------------------------------------------------------------
    def get_queryset(self, request):
        queryset = self.scope_queryset(request, order_list_for_admin())
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    @admin.display(description=_("order"), ordering="number")
    def order_column(self, order):
        return format_html('{}<br><small class="order-store">{}</small>', order.number, order.store.name)

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_column(self, order):
        customer = order.customer
        return format_html(
            '{}<br><span class="order-customer-phone" dir="ltr">{}</span>',
            customer.name,
            customer.phone or customer.phone_raw,
        )

    @admin.display(description=_("payment"), ordering="payment_method")
    def payment(self, order):
        return order.get_payment_method_display()

    @admin.display(description=_("total"), ordering="total_amount")
    def total(self, order):
        return format_html(
            '<span style="white-space:nowrap">{} {}</span>',
            # 1,249.00 / 1 249,00: grouped and with the decimal mark of the reader's language.
            formats.number_format(order.total_amount, decimal_pos=2, use_l10n=True, force_grouping=True),
            order.currency,
        )

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, order):
        return status_badge(order)

    @admin.display(description=_("placed"), ordering="placed_at")
    def placed(self, order):
        return admin_datetime(order.placed_at)

    # --- order page ----------------------------------------------------------------------
    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly += [name for name in self.readonly_once_created if name not in readonly]
        return readonly

    def get_inlines(self, request, obj):
        # The timeline (and any inline other apps add) only exists once the order does.
        return self.inlines if obj is not None else [OrderItemInline]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is None or add:
            return super().render_change_form(request, context, add, change, form_url, obj)
        names = order_available_transitions(obj, request.user)
        context.update(
            order_status_badge=status_badge(obj),
            order_transitions=[TRANSITIONS_BY_NAME[name] for name in names],
            order_transition_url=reverse(
                f"{self.admin_site.name}:orders_order_transition", args=[quote(obj.pk)]
            ),
            order_time_zone=obj.store.time_zone,
            order_ship_carriers=self.ship_carrier_suggestions(obj),
        )
        response = super().render_change_form(request, context, add, change, form_url, obj)
        # The order's times (fields, timeline, messages) read on the store's clock, the one its
        # customers and carriers live by. Rendered here: the override must hold while it renders.
        with timezone.override(obj.store.time_zone):
            return response.render()

    def save_model(self, request, obj, form, change):
        if not change:
            order_create(obj, source=OrderEvent.Source.AGENT, actor=request.user)
            return
        # Write only what the form edits, never the status columns (order_transition owns them).
        # A transition may have committed since the page loaded; the edit does not touch the
        # status, so take the current one rather than fail on django-fsm's concurrency guard.
        obj.refresh_from_db(fields=["status"])
        concrete = {field.name for field in Order._meta.concrete_fields}
        obj.save(update_fields=[name for name in form.fields if name in concrete] + ["updated_at"])

    def has_delete_permission(self, request, obj=None):
        return False

    # Other apps' list actions (carriers: "Create parcels at …"): callables taking the request and
    # answering ``{name: (function, name, description)}``, as ``get_actions`` does.
    action_providers: list = []

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        for provider in self.action_providers:
            actions.update(provider(request))
        return actions

    def ship_carrier_suggestions(self, order) -> list[str]:
        """Carrier names the "Mark shipped" form suggests: carriers replaces this with the
        store's carrier accounts (orders never imports carriers)."""
        return []

    # --- status buttons ------------------------------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                "<path:object_id>/transition/",
                self.admin_site.admin_view(self.transition_view),
                name="{}_{}_transition".format(*info),
            )
        ]
        return custom + super().get_urls()

    def transition_view(self, request, object_id):
        """Apply the transition a button on the order page asked for, through the service."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        if not self.has_view_permission(request, order):
            raise PermissionDenied

        name = request.POST.get("transition", "")
        change_url = reverse(f"{self.admin_site.name}:orders_order_change", args=[quote(order.pk)])
        common = {
            "source": OrderEvent.Source.AGENT,
            "actor": request.user,
            "reason": request.POST.get("reason", "").strip(),
            "expected_status": request.POST.get("expected_status") or None,
        }
        try:
            if name == "ship":
                parcel = ShipFormFields(request.POST)
                if not parcel.is_valid():
                    for errors in parcel.errors.values():
                        messages.error(request, " ".join(errors))
                    return HttpResponseRedirect(change_url)
                order_ship(order, **parcel.cleaned_data, **common)
            else:
                order_transition(order, name, **common)
        except OrderTransitionError as err:
            messages.error(request, err.user_message())
        else:
            messages.success(
                request,
                gettext("Order %(number)s is now %(status)s.")
                % {"number": order.number, "status": order.get_status_display().lower()},
            )

        return HttpResponseRedirect(change_url)


# The store pages and the store inbox have their own modules; importing them registers them.
from orders import delivery_admin, store_admin  # noqa: E402, F401
from orders.api import token_admin  # noqa: E402, F401
