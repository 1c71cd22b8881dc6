from django.urls import path

from messaging.webhooks import provider_webhook

app_name = "messaging"

urlpatterns = [
    path(
        "<slug:provider>/<slug:store_slug>/status/",
        provider_webhook,
        {"kind": "status"},
        name="provider-status",
    ),
    path(
        "<slug:provider>/<slug:store_slug>/inbound/",
        provider_webhook,
        {"kind": "inbound"},
        name="provider-inbound",
    ),
]
