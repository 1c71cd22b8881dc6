"""Customers as stores send them: found by phone, then e-mail, within one store."""

from django.db import IntegrityError, transaction

from orders.models import Customer, Store
from orders.phones import normalize_phone


def customer_upsert(
    store: Store, *, name: str, phone: str = "", email: str = "", language: str = ""
) -> tuple[Customer, list[str]]:
    """The store's customer with this phone (E.164 in the store's region), else this e-mail, made
    if neither is known, with what was given filled in. Returns it and notes for the inbox: an
    unreadable phone is kept as typed and noted, never dropped. Call inside a transaction."""
    notes = []
    e164 = normalize_phone(phone, store.default_phone_region) or ""
    if phone and not e164:
        notes.append(f"phone {len(phone)} characters long could not be read in {store.default_phone_region}")
    found = Customer.objects.select_for_update().filter(store=store)
    customer = found.filter(phone=e164).first() if e164 else None
    if customer is None and email:
        customer = found.filter(email__iexact=email).order_by("pk").first()
    if customer is None:
        customer = Customer(store=store, name=name or "Customer")
    updates = {"name": name, "email": email}
    if language in Customer.Language.values:
        updates["language"] = language
    # A readable number replaces what was there (unless it is another customer's); an unreadable
    # one is kept only when there is no good one to lose.
    if phone and (e164 or not customer.phone):
        taken = e164 and found.filter(phone=e164).exclude(pk=customer.pk).exists()
        if not taken:
            updates["phone_raw"] = phone
    changed = customer.pk is None
    for field, value in updates.items():
        if value and getattr(customer, field) != value:
            setattr(customer, field, value)
            changed = True
    if not changed:
        return customer, notes
    if customer.pk is not None:
        customer.save()
        return customer, notes
    try:
        with transaction.atomic():  # a savepoint: a concurrent delivery may make this customer first
            customer.save()
    except IntegrityError:
        # The same phone number, committed by the other delivery while we looked: that is them.
        customer = found.get(phone=e164)
    return customer, notes
