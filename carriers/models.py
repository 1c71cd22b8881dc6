from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Shipment(models.Model):
    """A parcel on its way to the customer, as the store or the carrier reported it."""

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="shipments", verbose_name=_("order")
    )
    carrier = models.CharField(
        _("carrier"), max_length=100, blank=True, help_text=_("As reported, e.g. Amana, Aramex")
    )
    tracking_number = models.CharField(_("tracking number"), max_length=100, blank=True)
    tracking_url = models.URLField(_("tracking URL"), max_length=500, blank=True)
    # The last status the reporter gave, word for word: kept even when Livra cannot map it.
    reported_status = models.CharField(_("reported status"), max_length=100, blank=True)
    source = models.CharField(_("source"), max_length=20, help_text=_("store or carrier"))
    external_id = models.CharField(
        _("external id"), max_length=100, blank=True, help_text=_("e.g. the Shopify fulfillment id")
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

    def __str__(self) -> str:
        carrier = self.carrier or gettext("carrier?")
        tracking_number = self.tracking_number or gettext("(no tracking number)")
        return f"{carrier} {tracking_number}"
