"""What the webhook worker (`manage.py webhook_worker`) runs with beyond
procrastinate's defaults (settings.PROCRASTINATE_ON_APP_READY)."""

import asyncio
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

# Set when the worker is asked to stop (manage.py webhook_worker): a lane job ends
# after the batch it is sending instead of waiting for more deliveries, so the worker
# stops while captures keep coming (its lanes' jobs never ran out of work before, and
# a deploy's SIGTERM ran into its SIGKILL). What the lane leaves pending, the
# dispatcher queues again within a second, for whichever worker runs then.
STOPPING = threading.Event()

# The event loops whose default thread pool was sized for their worker.
_SIZED = weakref.WeakSet()


def on_app_ready(app) -> None:
    middleware = app.worker_defaults.get("worker_middleware") or []
    app.worker_defaults["worker_middleware"] = [*middleware, a_thread_for_every_job]


async def a_thread_for_every_job(call_next, context, worker):
    """Procrastinate runs a synchronous job (every delivery lane) in asyncio's default
    thread pool, which has min(32, CPUs + 4) threads: on two cores 6 of the worker's 8
    running jobs sent and 2 waited for a thread. The pool gets as many threads as the
    worker runs jobs, before its first job."""
    loop = asyncio.get_running_loop()
    if loop not in _SIZED:
        _SIZED.add(loop)
        pool = ThreadPoolExecutor(worker.concurrency, thread_name_prefix="procrastinate-job")
        loop.set_default_executor(pool)
    return await call_next()
