from django.db import models


class Shipment(models.Model):
    """A parcel on its way to the customer, as the store or the carrier reported it."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="shipments")
    carrier = models.CharField(max_length=100, blank=True, help_text="As reported, e.g. Amana, Aramex")
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    # The last status the reporter gave, word for word: kept even when Livra cannot map it.
    reported_status = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=20, help_text="store or carrier")
    external_id = models.CharField(max_length=100, blank=True, help_text="e.g. the Shopify fulfillment id")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "tracking_number"],
                condition=~models.Q(tracking_number=""),
                name="shipment_unique_tracking_per_order",
            )
        ]

    def __str__(self) -> str:
        return f"{self.carrier or 'carrier?'} {self.tracking_number or '(no tracking number)'}"
