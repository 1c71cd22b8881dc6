from django.urls import path

from carriers.webhooks import carrier_webhook

app_name = "carriers"

urlpatterns = [
    # /webhooks/carriers/<carrier>/<account id>/ (Shiprocket: its alias, see carriers.webhooks).
    path("webhooks/carriers/<slug:carrier_path>/<int:account_id>/", carrier_webhook, name="carrier-webhook"),
]
