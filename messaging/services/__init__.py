"""Actions of the messaging app. Import from the submodules; this package only groups them:

- ``consent``: record opt-ins and opt-outs with evidence, and decide what is allowed;
- ``routing``: the channels to try, the provider for each, quiet hours;
- ``rendering``: templates and their placeholders;
- ``outbox``: notifications and messages, the send, retries and fallback;
- ``receipts``: delivery receipts, applied forward only;
- ``sweep``: the periodic recovery of lost kicks, expired leases and silent channels.
"""
