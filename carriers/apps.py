from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CarriersConfig(AppConfig):
    # Shipments (as stores report them: orders.signals.shipment_reported, and as Livra creates
    # them at carriers), carrier adapters (carriers/adapters/<name>.py) and tracking.
    name = "carriers"
    verbose_name = _("Carriers")

    def ready(self) -> None:
        from carriers import receivers  # noqa: F401 - connects the signal receivers
        from carriers.adapters import load_adapters
        from carriers.services.webhooks import CARRIER_PLATFORM, carrier_delivery_apply
        from orders.services.ingest import inbox_applier_register

        load_adapters()  # each carrier module registers itself by name
        # Carriers' pushes are kept and drained by the store inbox (carriers.services.webhooks).
        inbox_applier_register(CARRIER_PLATFORM, carrier_delivery_apply)
        post_migrate.connect(
            status_mappings_sync_all, sender=self, dispatch_uid="carriers.status_mappings_sync"
        )


def status_mappings_sync_all(sender, using="default", **kwargs) -> None:
    """After migrate (and a test database's flush): every adapter's missing default mappings."""
    from carriers.adapters import adapter_names
    from carriers.services.mappings import status_mappings_sync

    for carrier in adapter_names():
        status_mappings_sync(carrier)
