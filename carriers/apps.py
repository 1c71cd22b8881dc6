from django.apps import AppConfig


class CarriersConfig(AppConfig):
    # Carrier adapters and tracking arrive with their own issue; for now carriers keeps the
    # shipments stores report (orders.signals.shipment_reported).
    name = "carriers"
    verbose_name = "Carriers"

    def ready(self) -> None:
        from carriers import receivers  # noqa: F401 - connects the signal receivers
