"""One row inserted unless its unique key is taken: one statement, no savepoint.

``get_or_create`` costs a SELECT, a SAVEPOINT, the INSERT and a RELEASE; a row whose key was
checked already, or that may race a twin, needs only ``INSERT ... ON CONFLICT (key) DO NOTHING
RETURNING id``. The conflict is named: any other constraint the row breaks still raises.
"""

from django.db import connections, router
from django.db.models import Model
from django.db.models.sql.subqueries import InsertQuery


def insert_once(obj: Model, conflict_fields: tuple[str, ...]) -> bool:
    """INSERT the unsaved ``obj`` unless a row with its ``conflict_fields`` exists (they must be a
    unique constraint of the model). Returns whether it was inserted; then ``obj.pk`` is set, as
    ``save()`` would have. No model signal is sent (the models this serves have no receivers)."""
    model = type(obj)
    opts = model._meta
    using = router.db_for_write(model, instance=obj)
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [field for field in opts.local_concrete_fields if not field.generated]
    if obj.pk is None:
        fields = [field for field in fields if field is not opts.auto_field]
    query = InsertQuery(model)
    query.insert_values(fields, [obj])
    [(sql, params)] = query.get_compiler(using=using).as_sql()
    conflict = ", ".join(quote(opts.get_field(name).column) for name in conflict_fields)
    sql += f" ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(opts.pk.column)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    setattr(obj, opts.pk.attname, row[0])
    obj._state.adding, obj._state.db = False, using
    return True
