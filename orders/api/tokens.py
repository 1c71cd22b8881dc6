"""Making, checking and revoking API tokens (orders.api.models.ApiToken)."""

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from orders.api.models import ApiToken

logger = logging.getLogger(__name__)

KEY_PREFIX = "lv_"  # marks a Livra key for people and for secret scanners
PREFIX_LENGTH = len(KEY_PREFIX) + 8
# last_used_at is written at most this often per token, not on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MANAGE_OTHERS = "orders.manage_others_apitoken"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def api_token_may_create_for(actor, user) -> bool:
    """A user makes tokens for themself with ``orders.add_apitoken``; for anyone else they also
    need ``orders.manage_others_apitoken`` (superusers have both)."""
    if not actor.has_perm("orders.add_apitoken"):
        return False
    return actor.pk == user.pk or actor.has_perm(MANAGE_OTHERS)


def api_token_create(user, *, name: str, actor=None, expires_at=None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it with its key, which exists nowhere else after this.

    ``actor`` (who asks; None for a command run on the server) must be allowed to make it."""
    if actor is not None and not api_token_may_create_for(actor, user):
        raise PermissionDenied("You may not create API tokens for this user.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:PREFIX_LENGTH],
        key_hash=key_hash(key),
        created_by=actor,
        expires_at=expires_at,
    )
    logger.info(
        "api token created token_id=%s user_id=%s actor_id=%s", token.pk, user.pk, getattr(actor, "pk", None)
    )
    return token, key


def api_token_for_key(key: str) -> ApiToken | None:
    """The usable-or-not token whose key this is, or None. Looked up by the key's hash, then the
    hashes compared in constant time."""
    wanted = key_hash(key)
    token = ApiToken.objects.select_related("user").filter(key_hash=wanted).first()
    if token is None or not hmac.compare_digest(token.key_hash, wanted):
        return None
    return token


def api_token_mark_used(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def api_token_revoke(token: ApiToken, *, actor) -> bool:
    """Stop the token working now. False when it was revoked already."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        logger.info("api token revoked token_id=%s actor_id=%s", token.pk, getattr(actor, "pk", None))
    return bool(revoked)
