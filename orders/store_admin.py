"""The store pages: settings, members, the webhook URL to give each platform, and its secrets.

Livra's webhook secret is never rendered on these pages. It is shown once, in the response to the
POST that made it (the store's creation, the "Rotate webhook secret" button), and nowhere else:
not in a flashed message (which the session keeps until the next page), not on the change form.
The platform's own signing secret (Shopify's, YouCan's) is write-only: the page only says whether
one is set.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from orders.admin_scoping import StoreScopedAdmin
from orders.forms import StoreAdminForm
from orders.models import Store
from orders.platforms import platform_names
from orders.services.stores import ROTATION_GRACE, platform_secret_set, webhook_secret_rotate

PLATFORM_SECRET, LIVRA_SECRET = "platform", "livra"
# Which secret signs each platform's deliveries: the platform's own where the platform makes it,
# else the one Livra made for the store. A platform not listed here is assumed to use Livra's.
SECRET_OWNERS = {
    "shopify": PLATFORM_SECRET,
    "youcan": PLATFORM_SECRET,
    "woocommerce": LIVRA_SECRET,
    "generic": LIVRA_SECRET,
}
PLATFORM_LABELS = {
    "shopify": "Shopify",
    "woocommerce": "WooCommerce",
    "youcan": "YouCan",
    "generic": _("Generic JSON"),
}
WHERE_TO_PASTE = {
    "shopify": _("Shopify admin → Settings → Notifications → Webhooks (or the app's webhook subscriptions)."),
    "youcan": _("The YouCan app's webhook subscriptions."),
    "woocommerce": _(
        "WooCommerce → Settings → Advanced → Webhooks (delivery URL; Livra's secret as Secret)."
    ),
    "generic": _("Your system's webhook settings."),
}
GRACE_HOURS = int(ROTATION_GRACE.total_seconds() // 3600)
# The generic source's scheme (orders/platforms/generic.py).
GENERIC_HEADERS = (
    (
        "X-Livra-Signature",
        _('lowercase hex HMAC-SHA256 of "<timestamp>." followed by the raw body, keyed with Livra\'s secret'),
    ),
    ("X-Livra-Timestamp", _("the <timestamp> signed, in Unix seconds; refused when more than 5 minutes off")),
    ("X-Livra-Event-Id", _("your id for the event, the same on every retry of it")),
    ("X-Livra-Topic", _("order.created, order.updated, order.cancelled or order.shipped")),
)


@dataclass(frozen=True)
class WebhookEndpoint:
    platform: str
    label: str
    url: str
    uses_platform_secret: bool
    where: str
    headers: tuple[tuple[str, str], ...] = field(default=())


def store_webhook_endpoints(store: Store) -> list[WebhookEndpoint]:
    """The absolute URL each platform delivers this store's webhooks to, and the secret it signs with."""
    base = settings.LIVRA_PUBLIC_URL.rstrip("/")
    return [
        WebhookEndpoint(
            platform=name,
            label=PLATFORM_LABELS.get(name, name),
            url=base + reverse("orders:store-webhook", args=[name, store.slug]),
            uses_platform_secret=SECRET_OWNERS.get(name, LIVRA_SECRET) == PLATFORM_SECRET,
            where=WHERE_TO_PASTE.get(name, ""),
            headers=GENERIC_HEADERS if name == "generic" else (),
        )
        for name in platform_names()
    ]


def render_webhook_endpoints(store: Store) -> str:
    return render_to_string(
        "admin/orders/store/webhook_endpoints.html",
        {"endpoints": store_webhook_endpoints(store), "platform_secret_set": bool(store.platform_secret)},
    )


@admin.register(Store)
class StoreAdmin(StoreScopedAdmin, admin.ModelAdmin):
    store_lookups = ("pk",)
    form = StoreAdminForm
    change_form_template = "admin/orders/store/change_form.html"
    list_display = ["name", "slug", "platform", "currency", "default_phone_region", "time_zone"]
    list_filter = ["platform"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]
    # A payment page typed without a scheme is https (Django 6's default; 5.2 warns without it).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # No secret column is listed anywhere: Livra's webhook secret is never rendered, not even
    # read-only, and the platform's is only entered (new_platform_secret) and said to be set.
    readonly_fields = ["created_at", "webhook_endpoints", "signing_secrets"]
    # Read-only panels other apps add to a store's page, as (title, function of the store): orders
    # never imports them (messaging adds its channel providers, as it adds the order's messages).
    panels: list = []

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *(show for _, show in self.panels)]

    def get_fieldsets(self, request, obj=None):
        settings_fields = ["name", "slug", "platform", "currency", "default_phone_region", "time_zone"]
        settings_fields += ["payment_link_url"]  # the failed-delivery rule offers it
        settings_fields += ["ship_at"]  # carriers' dispatch reads it
        if obj is not None:
            settings_fields.append("created_at")
        webhook_fields = ["webhook_endpoints", "signing_secrets"] if obj is not None else []
        if obj is None or self.has_change_permission(request, obj):
            webhook_fields.append("new_platform_secret")  # write-only: not for who may only view
        fieldsets = [
            (None, {"fields": settings_fields}),
            (_("Platform"), {"fields": ["shop_domain", "cod_gateway_names"]}),
            (_("Members"), {"fields": ["members"]}),
        ]
        if webhook_fields:
            fieldsets.append((_("Webhooks"), {"fields": webhook_fields}))
        if obj is not None:
            fieldsets += [(title, {"fields": [show]}) for title, show in self.panels]
        return fieldsets

    # --- read-only panels ----------------------------------------------------------------
    @admin.display(description=_("Webhook URLs"))
    def webhook_endpoints(self, store: Store):
        return render_webhook_endpoints(store)

    @admin.display(description=_("Signing secrets"))
    def signing_secrets(self, store: Store):
        return render_to_string(
            "admin/orders/store/signing_secrets.html",
            {
                "platform_secret_set": bool(store.platform_secret),
                "rotated_at": store.webhook_secret_rotated_at,
                "previous_accepted_until": previous_secret_accepted_until(store),
            },
        )

    # --- saving --------------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        if change:
            # Write only what the form edits: a rotation may have committed since the page loaded,
            # and a full save would put the old secret back.
            concrete = {model_field.name for model_field in Store._meta.concrete_fields}
            obj.save(update_fields=[name for name in form.fields if name in concrete])
        else:
            obj.save()
        new_platform_secret = form.cleaned_data.get("new_platform_secret", "").strip()
        if new_platform_secret:
            platform_secret_set(obj, new_platform_secret, actor=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        if IS_POPUP_VAR in request.POST:
            # The popup hands the new store back to the form that opened it; the secret can be
            # had later with "Rotate webhook secret" on the store page.
            return super().response_add(request, obj, post_url_continue)
        return self.secret_shown_once_response(
            request,
            obj,
            title=gettext("Store “%(store)s” added") % {"store": obj},
            intro=gettext(
                "The store is saved. This is its webhook secret for WooCommerce and generic deliveries."
            ),
        )

    # --- Livra's webhook secret: shown once -----------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_secret_view),
                name="{}_{}_rotate_secret".format(*info),
            )
        ]
        return custom + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add and self.has_change_permission(request, obj):
            context.update(
                rotate_secret_url=reverse(
                    f"{self.admin_site.name}:orders_store_rotate_secret", args=[quote(obj.pk)]
                ),
                secret_rotated_at=rotation_marker(obj),
                grace_hours=GRACE_HOURS,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def rotate_secret_view(self, request, object_id):
        """POST: give the store a new webhook secret and show it, once. GET changes nothing."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        store = self.get_object(request, unquote(object_id))
        if store is None:
            raise Http404("No such store.")
        if not self.has_change_permission(request, store):
            raise PermissionDenied
        change_url = reverse(f"{self.admin_site.name}:orders_store_change", args=[quote(store.pk)])
        if request.POST.get("rotated_at", "") != rotation_marker(store):
            # The secret changed since the page was loaded (another rotation, or this browser
            # posting the same form again): rotating once more would end the grace of the secret
            # the store still uses.
            messages.warning(
                request,
                gettext(
                    "The webhook secret was rotated since this page was loaded, so it was not rotated again. "
                    "Rotate it from this page if you still need a new one."
                ),
            )
            return HttpResponseRedirect(change_url)
        secret = webhook_secret_rotate(store, actor=request.user)
        return self.secret_shown_once_response(
            request,
            store,
            title=gettext("New webhook secret for “%(store)s”") % {"store": store},
            intro=ngettext(
                "The webhook secret is rotated. Put the new one in the store's webhook settings: "
                "the previous secret keeps working for %(hours)s hour, then only this one does.",
                "The webhook secret is rotated. Put the new one in the store's webhook settings: "
                "the previous secret keeps working for %(hours)s hours, then only this one does.",
                GRACE_HOURS,
            )
            % {"hours": GRACE_HOURS},
            secret=secret,
        )

    def secret_shown_once_response(self, request, store: Store, *, title: str, intro: str, secret=None):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "original": store,
            "intro": intro,
            "secret": secret or store.webhook_secret,
            "endpoints": render_webhook_endpoints(store),
            "change_url": reverse(f"{self.admin_site.name}:orders_store_change", args=[quote(store.pk)]),
        }
        # admin_view's never_cache marks the answer no-store: no browser or proxy keeps the secret.
        return TemplateResponse(request, "admin/orders/store/secret_once.html", context)


def rotation_marker(store: Store) -> str:
    """What the rotate form posts back, to tell a deliberate rotation from a repeated one."""
    rotated_at = store.webhook_secret_rotated_at
    return rotated_at.isoformat() if rotated_at else "never"


def previous_secret_accepted_until(store: Store):
    rotated_at = store.webhook_secret_rotated_at
    if not (store.previous_webhook_secret and rotated_at):
        return None
    until = rotated_at + ROTATION_GRACE
    return until if until > timezone.now() else None
