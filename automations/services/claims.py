"""Taking due rows for one worker: the sweep's timers, the team channel's alerts."""

from django.db import connection
from django.db.models import QuerySet


def ids_claim(candidates: tuple[QuerySet, ...], limit: int) -> list[int]:
    """Up to ``limit`` ids from each queryset in turn (each ordered, each answered by its own
    partial index: one query with OR between them is answered with a scan of the whole table),
    locked ``FOR UPDATE SKIP LOCKED`` where the database has it, so two workers never take one
    row. Call inside the transaction that marks them taken."""
    ids: list[int] = []
    for rows in candidates:
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        ids += rows.values_list("pk", flat=True)[: limit - len(ids)]
        if len(ids) >= limit:
            break
    return ids
