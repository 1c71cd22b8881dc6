"""kombu's Redis transport, with one fix: a worker survives the broker going away.

When Redis goes away while the worker waits on BRPOP and holds unacknowledged tasks (one running
on a two-thread pool, or tasks waiting for their countdown), kombu's ``Channel.close()`` first
reads the outstanding BRPOP reply. On the dead connection that read raises a connection error, and
``close()`` stops half-way: the channel is not marked closed. Celery's consumer then drops the
transport's client (``Connection.collect()``) and closes the connection a second time; this time
``close()`` gets as far as putting the unacknowledged tasks back, which needs a new connection pool
built from the transport's client, now ``None``::

    AttributeError: 'NoneType' object has no attribute 'hostname'   (kombu.transport.redis._connparams)

That error is not a connection error, so it escapes Celery's reconnect loop and the worker exits
("Unrecoverable error"). Reading the BRPOP reply on close exists so that a task popped by a
*clean* shutdown is not lost (kombu PR #1733); on a dead connection there is no reply to read, so
the error is ignored and ``close()`` runs to the end the first time. What BRPOP might have popped
is gone with the connection either way: the beat sweeps recover the work it stood for.

Selected in settings (``CELERY_BROKER_TRANSPORT``) for ``redis://`` and ``rediss://`` brokers;
``tests/faults/test_broker_outage.py`` stops a worker's Redis under it.
"""

from kombu.transport import redis
from kombu.transport.virtual import Empty


class Channel(redis.Channel):
    def close(self):
        self._closing = True
        if self._in_poll:
            try:
                self._brpop_read()
            except (Empty, *self.connection_errors):
                pass  # _brpop_read clears _in_poll either way: super() does not read again
        super().close()


class Transport(redis.Transport):
    Channel = Channel
