"""Rows inserted unless their unique key is taken: one statement, no savepoint.

``get_or_create`` costs a SELECT, a SAVEPOINT, the INSERT and a RELEASE; a row whose key was
checked already, or that may race a twin, needs only ``INSERT ... ON CONFLICT (key) DO NOTHING
RETURNING id``. The conflict is named: any other constraint the row breaks still raises. Many rows
go in one such statement (``insert_many_once``): a batch of carrier events, a batch of messages.
"""

from django.db import connections, router
from django.db.models import Model
from django.db.models.sql.subqueries import InsertQuery


def insert_once(obj: Model, conflict_fields: tuple[str, ...]) -> bool:
    """INSERT the unsaved ``obj`` unless a row with its ``conflict_fields`` exists (they must be a
    unique constraint of the model). Returns whether it was inserted; then ``obj.pk`` is set, as
    ``save()`` would have. No model signal is sent (the models this serves have no receivers)."""
    return insert_many_once([obj], conflict_fields)[0]


def insert_many_once(objs: list[Model], conflict_fields: tuple[str, ...]) -> list[bool]:
    """``insert_once`` for unsaved objects of one model, in one INSERT: whether each was inserted
    (a row already holding its key, or an earlier object of ``objs`` with the same key, keeps it).
    The inserted objects get their primary key."""
    if not objs:
        return []
    model = type(objs[0])
    opts = model._meta
    using = router.db_for_write(model, instance=objs[0])
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [field for field in opts.local_concrete_fields if not field.generated]
    if any(obj.pk is None for obj in objs):
        fields = [field for field in fields if field is not opts.auto_field]
    key_fields = [opts.get_field(name) for name in conflict_fields]
    query = InsertQuery(model)
    query.insert_values(fields, objs)
    [(sql, params)] = query.get_compiler(using=using).as_sql()
    conflict = ", ".join(quote(field.column) for field in key_fields)
    returned = ", ".join(quote(column) for column in [opts.pk.column, *(f.column for f in key_fields)])
    sql += f" ON CONFLICT ({conflict}) DO NOTHING RETURNING {returned}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # The key as the database returns it and as the object holds it (a foreign key by its id).
    inserted = {tuple(row[1:]): row[0] for row in rows}
    done = []
    for obj in objs:
        key = tuple(field.get_db_prep_value(getattr(obj, field.attname), connection) for field in key_fields)
        pk = inserted.pop(key, None)
        if pk is not None:
            setattr(obj, opts.pk.attname, pk)
            obj._state.adding, obj._state.db = False, using
        done.append(pk is not None)
    return done
