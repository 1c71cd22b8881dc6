"""``Authorization: Token <key>`` against Livra's hashed API tokens (orders.api.tokens).

The header is DRF's ``TokenAuthentication``'s, so integrations made with the keys of
``rest_framework.authtoken`` keep working: their keys were hashed into ``ApiToken`` rows by a
migration.
"""

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from orders.api.tokens import api_token_for_key, api_token_mark_used


class ApiTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str):
        token = api_token_for_key(key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise AuthenticationFailed("Token revoked.")
        if not token.is_usable():
            raise AuthenticationFailed("Token expired.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        api_token_mark_used(token)
        return token.user, token
