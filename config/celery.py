import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("livra")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(**kwargs) -> None:
    # Connections are kept between tasks (CELERY_DB_REUSE_MAX); close the ones that are broken
    # or older than DB_CONN_MAX_AGE, as Django does around each web request.
    from django.db import close_old_connections

    close_old_connections()
