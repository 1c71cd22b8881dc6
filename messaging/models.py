from django.db import models


class Message(models.Model):
    """An outbox row: written in the status change's transaction, sent after it commits."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="messages")
    customer = models.ForeignKey("orders.Customer", on_delete=models.CASCADE, related_name="messages")
    event = models.CharField(max_length=50, help_text="The order event this message tells about")
    channel = models.CharField(max_length=20)
    provider = models.CharField(max_length=30)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # One message per (order status change, channel): a replayed trigger cannot send twice.
    idempotency_key = models.CharField(max_length=200, unique=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.event} via {self.channel} ({self.status})"
