from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from orders.api import views

app_name = "api"

urlpatterns = [
    path("orders/", views.OrderListUpsertApi.as_view(), name="orders"),
    path("orders/<int:pk>/", views.OrderDetailApi.as_view(), name="order"),
    path("orders/<int:pk>/transitions/", views.OrderTransitionApi.as_view(), name="order-transitions"),
    path("consents/", views.ConsentRecordApi.as_view(), name="consents"),
    path("messages/", views.MessageListApi.as_view(), name="messages"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
