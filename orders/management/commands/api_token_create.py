"""``manage.py api_token_create <username> [--name …] [--expires-in-days N]``: a new API token for
a user, its key printed once (only its hash is stored). Run on the server, as an operator."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from orders.api.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown this once only)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="API token", help="What will use it (shown in admin)")
        parser.add_argument("--expires-in-days", type=int, default=None, help="Default: until revoked")

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        token, key = api_token_create(user, name=name, expires_at=expires_at)
        self.stdout.write(
            f"API token {token.prefix}… for {user.get_username()} (copy the key now, it is not shown again):"
        )
        self.stdout.write(key)
