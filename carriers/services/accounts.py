"""Carrier accounts: a store's credentials at a carrier live in the environment, under a prefix."""

import os

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from carriers.adapters import adapter_class, credentials_from_env
from carriers.models import CarrierAccount


def carrier_account_create(**fields) -> CarrierAccount:
    """Save a new account and make sure its carrier's default status table is in the database."""
    from carriers.services.mappings import status_mappings_sync

    with transaction.atomic():
        account = CarrierAccount.objects.create(**fields)
        status_mappings_sync(account.carrier)
    return account


def carrier_account_env_status(account: CarrierAccount) -> dict[str, bool]:
    """Each environment variable the account needs → whether it is set. Names only, never values."""
    names = [f"{account.env_prefix}_{name}" for name in adapter_class(account.carrier).credential_names]
    names.append(account.webhook_secret_variable)
    return {name: bool(os.environ.get(name)) for name in names}


def carrier_account_adapter(account: CarrierAccount, *, for_webhooks: bool = False):
    """The account's adapter, built with its credentials read from the environment now.

    ``for_webhooks``: to verify and read the carrier's pushes only, which need the webhook secret
    and no API credential (a push is accepted even where the API keys are not set here).
    """
    cls = adapter_class(account.carrier)
    if for_webhooks:
        credentials = dict.fromkeys(cls.credential_names, "")
    else:
        credentials = credentials_from_env(account.env_prefix, cls.credential_names)
    # A real carrier knows the account by its credentials; the sandbox, which keeps parcels in
    # Livra's own database, is told which account they belong to.
    bound = {"account": account} if getattr(cls, "binds_account", False) else {}
    return cls(
        credentials,
        base_url=os.environ.get(f"{account.env_prefix}_BASE_URL") or None,
        webhook_secret=carrier_account_webhook_secret(account),
        **bound,
    )


def carrier_account_webhook_secret(account: CarrierAccount) -> str:
    return os.environ.get(account.webhook_secret_variable, "")


def carrier_label(carrier: str) -> str:
    """A carrier as people know it (the adapter's label, ``Sendit``); its name if unregistered."""
    try:
        return adapter_class(carrier).label
    except ImproperlyConfigured:
        return carrier
