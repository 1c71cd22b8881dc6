from django.urls import path

from messaging import sandbox_views
from messaging.webhooks import provider_webhook

app_name = "messaging"

urlpatterns = [
    path(
        "webhooks/messaging/<slug:provider>/<slug:store_slug>/status/",
        provider_webhook,
        {"kind": "status"},
        name="provider-status",
    ),
    path(
        "webhooks/messaging/<slug:provider>/<slug:store_slug>/inbound/",
        provider_webhook,
        {"kind": "inbound"},
        name="provider-inbound",
    ),
    # The demo's sandbox phone (staff only).
    path("sandbox/phone/", sandbox_views.phone_customers, name="sandbox-phone-customers"),
    path("sandbox/phone/<int:customer_id>/", sandbox_views.phone, name="sandbox-phone"),
    path("sandbox/phone/<int:customer_id>/feed/", sandbox_views.phone_feed, name="sandbox-phone-feed"),
    path("sandbox/phone/<int:customer_id>/reply/", sandbox_views.phone_reply, name="sandbox-phone-reply"),
]
