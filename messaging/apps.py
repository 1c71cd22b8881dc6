from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Messaging listens to orders; orders never imports messaging.
        from messaging import checks, receivers  # noqa: F401
