"""The API's views: read the input with a serializer, call a service, say what came of it.

Errors are JSON: 400 ``{"field": ["message", …]}`` for bad input, ``{"detail": "…"}`` otherwise
(401 no credentials, 403 no permission, 404 not one of your stores' objects, 409 conflict).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from messaging.models import Consent
from messaging.services.consent import consent_record
from orders.api.filters import MessageFilter, OrderFilter
from orders.api.pagination import ApiPagination
from orders.api.permissions import HasModelPermissionForMethod
from orders.api.selectors import message_list_for_user, order_detail_for_user, order_list_for_user
from orders.api.serializers import (
    ConsentRecordInputSerializer,
    ConsentSerializer,
    ErrorSerializer,
    MessageSerializer,
    OrderDetailSerializer,
    OrderEventSerializer,
    OrderSerializer,
    OrderTransitionInputSerializer,
    OrderUpsertInputSerializer,
    TransitionConflictSerializer,
)
from orders.errors import IllegalTransition, StaleOrderStatus, TransitionPermissionDenied
from orders.models import OrderEvent
from orders.platforms import StoreAction
from orders.selectors import order_available_transitions
from orders.services import order_ship, order_transition
from orders.services.ingest import store_actions_apply

FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT, description='Invalid input: `{"field": ["message", …]}`, nested like the body'
)
NOT_AUTHENTICATED = OpenApiResponse(ErrorSerializer, description="No or an invalid token")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="You lack the permission this needs")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such order in your stores")

COD_ORDER_EXAMPLE = OpenApiExample(
    "A cash-on-delivery order",
    request_only=True,
    value={
        "store": "atlas-souk",
        "external_id": "A-1001",
        "number": "#1001",
        "payment_method": "cod",
        "currency": "MAD",
        "total_amount": "249.00",
        "cod_amount": "249.00",
        "placed_at": "2026-11-20T10:00:00+01:00",
        "updated_at": "2026-11-20T10:00:00+01:00",
        "customer": {
            "name": "Fatima Zahra",
            "phone": "0612345678",
            "email": "fatima@example.com",
            "language": "fr",
            "consents": [{"channel": "whatsapp", "subscribed": True}],
        },
        "items": [{"title": "Babouches", "quantity": 1, "unit_price": "249.00", "sku": "BAB-1"}],
        "shipping_address": "12 Rue Ibn Battouta",
        "shipping_city": "Casablanca",
        "tags": ["instagram"],
    },
)


class ApiView(generics.GenericAPIView):
    permission_classes = [IsAuthenticated, HasModelPermissionForMethod]
    required_permissions: dict[str, str] = {}


@extend_schema_view(
    get=extend_schema(
        summary="List orders",
        description="Your stores' orders, newest first.",
        responses={200: OrderSerializer(many=True), 400: FIELD_ERRORS, 401: NOT_AUTHENTICATED},
    ),
    post=extend_schema(
        summary="Create or update an order",
        description=(
            "Creates the order (201) or, when the store already has one with this `external_id`, "
            "updates it (200) unless `updated_at` is not newer than the last update applied (200, "
            "unchanged). A new cash-on-delivery order asks the customer to confirm; a paid prepaid "
            "order is accepted. Needs the permission `orders.add_order`."
        ),
        request=OrderUpsertInputSerializer,
        examples=[COD_ORDER_EXAMPLE],
        responses={
            201: OrderDetailSerializer,
            200: OrderDetailSerializer,
            400: FIELD_ERRORS,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
        },
    ),
)
class OrderListUpsertApi(ApiView, generics.ListAPIView):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    pagination_class = ApiPagination
    required_permissions = {"POST": "orders.add_order"}

    def get_queryset(self):
        return order_list_for_user(self.request.user)

    def post(self, request):
        given = OrderUpsertInputSerializer(data=request.data, context=self.get_serializer_context())
        given.is_valid(raise_exception=True)
        incoming = given.incoming_order()
        try:
            outcome = store_actions_apply(
                given.validated_data["store"],
                [
                    StoreAction(
                        kind="upsert",
                        external_id=incoming.external_id,
                        order=incoming,
                        updated_at=incoming.updated_at,
                    )
                ],
                source=OrderEvent.Source.STORE,
                actor=request.user,
                evidence={"api_user_id": request.user.pk},
            )
        except TransitionPermissionDenied as exc:
            # The new order's first move (ask to confirm, accept) is made as the caller.
            raise PermissionDenied(str(exc)) from exc
        order = order_detail_for_user(request.user).get(pk=outcome.order.pk)
        return Response(
            OrderDetailSerializer(order, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


@extend_schema(
    summary="Get an order",
    description="The order with its customer (and consents), items, timeline and messages.",
    responses={200: OrderDetailSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
)
class OrderDetailApi(ApiView, generics.RetrieveAPIView):
    serializer_class = OrderDetailSerializer

    def get_queryset(self):
        return order_detail_for_user(self.request.user)


@extend_schema(
    summary="Apply a transition",
    description=(
        "Moves the order by transition name (`confirm`, `ship`, …), as you: you need the "
        "transition's permission. Returns the timeline event it wrote. `ship` may name the parcel "
        "(`carrier`, `tracking_number`, `tracking_url`): it is recorded as the order's shipment in "
        "the same transaction, and the customer's shipped message gives the carrier and the link."
    ),
    request=OrderTransitionInputSerializer,
    examples=[
        OpenApiExample(
            "Confirm after a call",
            request_only=True,
            value={
                "name": "confirm",
                "reason": "Confirmed by phone",
                "expected_status": "awaiting_confirmation",
            },
        ),
        OpenApiExample(
            "Shipped with a tracking number",
            request_only=True,
            value={
                "name": "ship",
                "carrier": "Amana",
                "tracking_number": "CX123456789MA",
                "tracking_url": "https://tracking.example.ma/CX123456789MA",
                "expected_status": "confirmed",
            },
        ),
    ],
    responses={
        200: OrderEventSerializer,
        400: FIELD_ERRORS,
        401: NOT_AUTHENTICATED,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: OpenApiResponse(
            TransitionConflictSerializer,
            description="Not possible from the order's status, or the status is not `expected_status`",
        ),
    },
)
class OrderTransitionApi(ApiView):
    serializer_class = OrderTransitionInputSerializer

    def get_queryset(self):
        return order_list_for_user(self.request.user)

    def post(self, request, pk: int):
        order = self.get_object()
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        common = {
            "source": OrderEvent.Source.AGENT,
            "actor": request.user,
            "reason": data["reason"],
            "payload": {"api_user_id": request.user.pk},
            "expected_status": data.get("expected_status"),
        }
        try:
            if data["name"] == "ship":
                parcel = {name: data[name] for name in ("carrier", "tracking_number", "tracking_url")}
                event = order_ship(order, **parcel, **common)
            else:
                event = order_transition(order, data["name"], **common)
        except TransitionPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        except (IllegalTransition, StaleOrderStatus) as exc:
            order.refresh_from_db(fields=["status", "status_version"])
            conflict = {
                "detail": str(exc),
                "status": order.status,
                "available_transitions": order_available_transitions(order, request.user),
            }
            return Response(conflict, status=status.HTTP_409_CONFLICT)
        return Response(OrderEventSerializer(event).data)


@extend_schema(
    summary="Record consent",
    description=(
        "Records where one of your stores' customers stands on a channel, with you and the API as "
        "the evidence. Takes effect at once. Needs the permission `messaging.add_consent`."
    ),
    request=ConsentRecordInputSerializer,
    examples=[
        OpenApiExample(
            "An opt-out said on the phone",
            request_only=True,
            value={"customer": 1, "channel": "whatsapp", "status": "opted_out", "note": "Asked by phone"},
        )
    ],
    responses={201: ConsentSerializer, 400: FIELD_ERRORS, 401: NOT_AUTHENTICATED, 403: FORBIDDEN},
)
class ConsentRecordApi(ApiView):
    serializer_class = ConsentRecordInputSerializer
    required_permissions = {"POST": "messaging.add_consent"}

    def post(self, request):
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        evidence = {"api_user_id": request.user.pk, **({"note": data["note"]} if data["note"] else {})}
        consent = consent_record(
            data["customer"],
            data["channel"],
            data["status"],
            source=Consent.Source.API,
            marketing=data["marketing"],
            actor=request.user,
            evidence=evidence,
        )
        return Response(ConsentSerializer(consent).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="List messages",
    description="Messages to your stores' customers, newest first.",
    responses={200: MessageSerializer(many=True), 400: FIELD_ERRORS, 401: NOT_AUTHENTICATED},
)
class MessageListApi(ApiView, generics.ListAPIView):
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    pagination_class = ApiPagination

    def get_queryset(self):
        return message_list_for_user(self.request.user)
