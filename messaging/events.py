"""What customers hear about, and the placeholders templates may use."""

# Order transition → the customer-facing event it announces. Transitions not listed are silent.
TRANSITION_EVENTS: dict[str, str] = {
    "request_confirmation": "confirmation_requested",
    "accept": "order_received",
    "confirm": "order_confirmed",
    "cancel": "order_cancelled",
    "ship": "order_shipped",
    "mark_out_for_delivery": "out_for_delivery",
    "fail_delivery": "delivery_failed",
    "reschedule_delivery": "delivery_rescheduled",
    "deliver": "order_delivered",
    "refund": "order_refunded",
}
CUSTOMER_EVENTS: tuple[str, ...] = tuple(dict.fromkeys(TRANSITION_EVENTS.values()))

# Time-critical: no receipt in time moves on to the next channel, and quiet hours do not hold them.
URGENT_EVENTS = frozenset({"confirmation_requested", "out_for_delivery", "delivery_failed"})

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
}
