from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CarriersConfig(AppConfig):
    # Shipments (as stores report them: orders.signals.shipment_reported, and as Livra creates
    # them at carriers), carrier adapters (carriers/adapters/<name>.py) and tracking.
    name = "carriers"
    verbose_name = _("Carriers")

    def ready(self) -> None:
        from carriers import receivers  # noqa: F401 - connects the signal receivers
        from carriers.adapters import load_adapters

        load_adapters()  # each carrier module registers itself by name
