"""Phone numbers in one form: E.164, parsed with the store's default region."""

import phonenumbers


def normalize_phone(raw: str, region: str) -> str | None:
    """Return ``raw`` as E.164 (``0612345678`` in MA → ``+212612345678``), or None if invalid."""
    if not raw or not raw.strip():
        return None
    try:
        parsed = phonenumbers.parse(raw, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
