import logging
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("livra")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def task_publish(task, *args, countdown: float | None = None, task_id: str | None = None) -> bool:
    """Publish ``task`` with ``args`` and say whether the broker took it.

    Every publish made after a commit goes through here. The change it follows is committed, so a
    broker that is down or frozen must not turn it into an error: the publish gives up within the
    broker's timeouts (settings), is logged, and the caller carries on; the beat sweeps find the
    work it was for (callers whose work no sweep finds say what they do instead). ``task_id``:
    the id to publish under, for a caller that reads the task's state later.
    """
    try:
        task.apply_async(args, countdown=countdown, task_id=task_id)
    except OperationalError as exc:  # kombu's wrapper for whatever the transport raised
        # The error's class only (ConnectionError, TimeoutError, ReadOnlyError…): a Redis error
        # reply can quote the command, and the command carries the task's arguments.
        error = type(exc.__cause__ or exc).__name__
        logger.warning("task not published, the broker is unavailable task=%s error=%s", task.name, error)
        return False
    return True


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
