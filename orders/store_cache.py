"""Stores by slug for the webhook request path, kept a few seconds per process.

Every store webhook needs its store (the secrets to verify with); reading the row each time costs
a query and half a millisecond of ORM work on a path that has to stay within a few milliseconds.
A store saved in this process is forgotten at once; other processes see a change (a rotated
secret, a new platform secret) within ``TTL``. A rotation keeps the previous secret valid for 24 h,
so the delay only means a new secret is refused, and the platform retries, for a few seconds.
"""

import threading
import time

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from orders.models import Store

TTL = 5.0  # seconds

_lock = threading.Lock()
_stores: dict[str, tuple[float, Store | None]] = {}


def store_by_slug(slug: str) -> Store | None:
    now = time.monotonic()
    with _lock:
        cached = _stores.get(slug)
    if cached is not None and now - cached[0] < TTL:
        return cached[1]
    store = Store.objects.filter(slug=slug).order_by().first()
    with _lock:
        _stores[slug] = (now, store)
    return store


def store_cache_clear() -> None:
    with _lock:
        _stores.clear()


@receiver([post_save, post_delete], sender=Store, dispatch_uid="orders.forget_cached_store")
def forget_cached_store(sender, instance, **kwargs):
    store_cache_clear()  # the slug itself may have changed: forget them all (stores change rarely)
