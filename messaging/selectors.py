from django.db.models import QuerySet

from messaging.models import Message


def message_list_for_order(order_id: int) -> QuerySet[Message]:
    return Message.objects.filter(order_id=order_id).order_by("created_at", "id")
