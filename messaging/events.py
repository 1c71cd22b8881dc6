"""What customers hear about, and the placeholders templates may use."""

# What customers can be told. Which event goes out when is the store's rules' decision
# (automations; its default rules send each status change's event).
CUSTOMER_EVENTS: tuple[str, ...] = (
    "confirmation_requested",
    "confirmation_reminder",
    "order_received",
    "order_confirmed",
    "order_cancelled",
    "order_shipped",
    "order_shipped_untracked",
    "out_for_delivery",
    "delivery_failed",
    "payment_link_offered",
    "delivery_rescheduled",
    "order_delivered",
    "review_request",
    "order_refunded",
    # Answers to the customer's own messages (automations' reply rules).
    "reply_received",
    "reply_already_confirmed",
    "reply_late_confirmed",
    "reply_late_cancelled",
)

# An event whose template cannot be filled yet (no carrier or tracking link for a parcel marked
# shipped by hand) goes out with its fallback's template instead of failing on every channel.
FALLBACK_EVENTS: dict[str, str] = {"order_shipped": "order_shipped_untracked"}

# Time-critical: no receipt in time moves on to the next channel, and quiet hours do not hold them.
# Answers to a customer's message go at once too: the customer has just written, so is awake.
URGENT_EVENTS = frozenset(
    {
        "confirmation_requested",
        "confirmation_reminder",
        "out_for_delivery",
        "delivery_failed",
        "reply_received",
        "reply_already_confirmed",
        "reply_late_confirmed",
        "reply_late_cancelled",
    }
)

PLACEHOLDERS: dict[str, str] = {
    "customer_name": "the customer's name",
    "order_number": "the order number the customer knows, e.g. #1042",
    "items": "the items, e.g. 2 × Babouches",
    "cod_amount": "cash to have ready, with currency, e.g. 249.00 MAD",
    "total_amount": "the order total, with currency",
    "carrier": "the carrier's name",
    "tracking_link": "the tracking link",
    "expected_date": "the expected delivery date",
    "store_name": "the store's name",
    "payment_link": "the store's payment page for the order (stores that set one)",
}
