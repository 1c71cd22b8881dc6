from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    # Rules, timers and the COD confirmation workflow arrive with their own issue.
    name = "automations"
    verbose_name = "Automations"
