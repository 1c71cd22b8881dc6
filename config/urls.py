from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

admin.site.site_header = _("Livra operations")
admin.site.site_title = "Livra"
admin.site.index_title = _("Orders, customers and messages")

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # The language switch on every page posts here (Django's set_language: a cookie, then back).
    path("i18n/", include("django.conf.urls.i18n")),
    # Provider webhooks (/webhooks/messaging/...) and the demo's sandbox phone (/sandbox/phone/).
    path("", include("messaging.urls")),
    # Carriers' webhooks (/webhooks/carriers/<carrier>/<account id>/).
    path("", include("carriers.urls")),
    # Store platforms' webhooks (/webhooks/<platform>/<store>/).
    path("", include("orders.urls")),
    # REST API, its OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/).
    path("api/", include("orders.api.urls")),
]

# JSON under /api/ and /webhooks/, Django's pages elsewhere (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
