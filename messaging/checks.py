"""``manage.py check``: a store's channel without a provider sends nothing (routing skips it, and
the notification says "no provider configured"); say so before a customer misses a message."""

from django.core import checks
from django.db import DatabaseError

NO_PROVIDER_ID = "messaging.W001"


@checks.register("messaging")
def channels_without_provider_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from messaging.models import ChannelProvider, MessagingSettings, default_channel_order
    from orders.models import Store

    try:
        stores = list(Store.objects.order_by("slug").only("slug"))
        channel_orders = dict(MessagingSettings.objects.values_list("store_id", "channel_order"))
        provided = set(ChannelProvider.objects.filter(enabled=True).values_list("store_id", "channel"))
    except DatabaseError:
        return []  # no database yet (before the first migrate): nothing to check
    return [
        checks.Warning(
            f'Store "{store.slug}" has no provider configured for {channel}: its messages on {channel} '
            "are not sent.",
            hint="Choose one in admin → Messaging → Channel providers (the sandbox only simulates: for "
            "a demo or test store), or take the channel out of the store's messaging settings.",
            obj=store,
            id=NO_PROVIDER_ID,
        )
        for store in stores
        for channel in channel_orders.get(store.pk) or default_channel_order()
        if (store.pk, channel) not in provided
    ]
