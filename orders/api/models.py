"""API tokens: what an integration sends as ``Authorization: Token <key>``, kept only as a hash.

The key itself is shown once, when the token is made (admin or ``manage.py api_token_create``),
and never stored: a copy of the database, a backup or an admin page gives nobody a usable key.
SHA-256 is the right hash for a key of 256 random bits (there is nothing to guess, so a slow
password hash would only slow every API call). The first characters are kept in clear to tell
tokens apart in lists and logs.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
        help_text=_("The API acts as this user: their stores, their permissions"),
    )
    name = models.CharField(
        _("name"), max_length=100, help_text=_("What uses it, e.g. “Atlas Souk custom checkout”")
    )
    prefix = models.CharField(
        _("prefix"), max_length=16, help_text=_("The key's first characters, to tell tokens apart")
    )
    key_hash = models.CharField(
        _("key hash"), max_length=64, unique=True, help_text=_("SHA-256 of the key, in hex")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True, help_text=_("Empty: until revoked")
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        app_label = "orders"
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-id"]
        permissions = [("manage_others_apitoken", "Can create, see and revoke API tokens of other users")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
