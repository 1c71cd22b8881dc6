from django.urls import path

from orders.webhooks import store_webhook

app_name = "orders"

urlpatterns = [
    # /webhooks/shopify/<store>/, /webhooks/woocommerce/<store>/, /webhooks/youcan/<store>/,
    # /webhooks/generic/<store>/ (orders.platforms).
    path("webhooks/<slug:platform>/<slug:store_slug>/", store_webhook, name="store-webhook"),
]
