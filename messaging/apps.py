from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Messaging")

    def ready(self) -> None:
        # Messaging listens to orders; orders never imports messaging.
        from messaging import checks, receivers  # noqa: F401
