import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("livra")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task=None, **kwargs) -> None:
    # Connections are kept between tasks (CELERY_DB_REUSE_MAX); close the ones that are broken
    # or older than DB_CONN_MAX_AGE, as Django does around each web request. Not for a task run
    # eagerly: it runs inside its caller's transaction, on the caller's connection.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
