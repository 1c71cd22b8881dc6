from django.apps import AppConfig


class CarriersConfig(AppConfig):
    # Carrier adapters and shipment tracking arrive with their own issue; the app exists now
    # so that the layout, migrations and imports are stable from the start.
    name = "carriers"
    verbose_name = "Carriers"
