"""Store settings that are secrets: Livra's webhook secret (shown once, rotatable) and the
platform's own signing secret (entered once, never shown back)."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from orders.models import Store, new_webhook_secret

logger = logging.getLogger(__name__)

# After a rotation the previous secret still verifies for this long, while the store updates the
# secret on its side (WooCommerce's webhook settings, a custom source's configuration).
ROTATION_GRACE = timedelta(hours=24)


def webhook_secret_rotate(store: Store, *, actor=None) -> str:
    """Give ``store`` a new webhook secret and return it: the only time it is ever shown."""
    secret = new_webhook_secret()
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        locked.previous_webhook_secret = locked.webhook_secret
        locked.webhook_secret = secret
        locked.webhook_secret_rotated_at = timezone.now()
        locked.save(update_fields=["previous_webhook_secret", "webhook_secret", "webhook_secret_rotated_at"])
    store.previous_webhook_secret, store.webhook_secret = locked.previous_webhook_secret, secret
    store.webhook_secret_rotated_at = locked.webhook_secret_rotated_at
    logger.info("store webhook secret rotated store_id=%s actor_id=%s", store.pk, getattr(actor, "pk", None))
    return secret


def webhook_secrets_accepted(store: Store, now=None) -> list[str]:
    """The current secret, and the previous one within ``ROTATION_GRACE`` of the rotation."""
    now = now or timezone.now()
    secrets = [store.webhook_secret]
    rotated_at = store.webhook_secret_rotated_at
    if store.previous_webhook_secret and rotated_at and now - rotated_at < ROTATION_GRACE:
        secrets.append(store.previous_webhook_secret)
    return secrets


def platform_secret_set(store: Store, secret: str, *, actor=None) -> None:
    """Record the platform's signing secret (Shopify's app client secret, YouCan's)."""
    store.platform_secret = secret.strip()
    store.save(update_fields=["platform_secret"])
    logger.info("store platform secret set store_id=%s actor_id=%s", store.pk, getattr(actor, "pk", None))
