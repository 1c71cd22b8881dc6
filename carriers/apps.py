from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CarriersConfig(AppConfig):
    # Carrier adapters and tracking arrive with their own issue; for now carriers keeps the
    # shipments stores report (orders.signals.shipment_reported).
    name = "carriers"
    verbose_name = _("Carriers")

    def ready(self) -> None:
        from carriers import receivers  # noqa: F401 - connects the signal receivers
