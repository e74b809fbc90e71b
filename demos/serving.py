"""How the tabs' generator events are served to many users at once: admission, fair turns, Stop.

Every generator event goes through Gradio's queue (its direct REST route is closed in app.py) and
into `guarded`, which, per request:

1. counts it against the host's limits (`demos.limits`): requests per session per minute, requests
   per session at once (one running, a few waiting), requests in the whole app; beyond them the
   user gets a message that names the limit and says to try again;
2. waits (without a thread) for the session's earlier request to finish, so each session has one
   request running;
3. runs the tab's function in a worker thread; the core call inside it (`ui.call`) takes the device
   through `core.scheduling.DEVICE`, in slices (one step, tile or face) given least-served session
   first, so nobody waits behind another user's long job for more than one slice of it;
4. on Stop (the tab's Stop button or gradio_client's `job.cancel()`, both of which cancel the
   event's asyncio task), cancels the job, whose next slice then ends it with `core.Cancelled`.

No model logic: this is request plumbing only.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import inspect
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import gradio as gr
import pydantic
from gradio.exceptions import InvalidPathError

from core.scheduling import DEVICE, Job
from demos import limits

CURRENT_JOB: contextvars.ContextVar[Job | None] = contextvars.ContextVar("imagegen_job", default=None)
"""The device job of the request whose tab function runs in this thread (read by `ui.call`)."""
LOCAL_SESSION = "local"
"""The session of calls without a Gradio request (a tab function called from Python)."""
RATE_WINDOW_S = 60.0

_executor = ThreadPoolExecutor(max_workers=limits.MAX_IN_FLIGHT, thread_name_prefix="imagegen-job")
_lock = threading.Lock()
_in_flight: collections.Counter[str] = collections.Counter()  # session -> admitted requests
_started: collections.defaultdict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
_running: dict[str, asyncio.Lock] = {}


def session_of(request: gr.Request | None) -> str:
    """The session a request belongs to: Gradio's session hash (one per page load or gradio_client
    Client); LOCAL_SESSION without a request."""
    return str(getattr(request, "session_hash", None) or LOCAL_SESSION)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a tab's event function (sync, with a `request: gr.Request = None` parameter) for serving
    as described in the module docstring. The wrapper keeps `fn`'s signature and docstring, which
    Gradio reads for the inputs it injects and for the API page."""
    signature = inspect.signature(fn)
    if "request" not in signature.parameters:
        raise TypeError(f"{fn.__name__} needs a `request: gr.Request = None` parameter to be guarded")

    @functools.wraps(fn)
    async def serve(*args: Any, **kwargs: Any) -> Any:
        session = session_of(signature.bind_partial(*args, **kwargs).arguments.get("request"))
        async with admitted(session):
            job = DEVICE.enter(session)
            context = contextvars.copy_context()  # Gradio's own context (progress, warnings) too
            context.run(CURRENT_JOB.set, job)
            work = asyncio.get_running_loop().run_in_executor(
                _executor, functools.partial(context.run, fn, *args, **kwargs))
            try:
                return await work
            except asyncio.CancelledError:
                job.cancel()  # the thread ends at its next step, tile or face
                raise
    return serve


@asynccontextmanager
async def admitted(session: str) -> AsyncIterator[None]:
    """Admit one request of `session` for the duration of the block, after its earlier one ended.

    Raises:
        gr.Error: a limit of `demos.limits` is reached; the message names it and when to retry.
    """
    limit = limits.current()
    now = time.monotonic()
    with _lock:
        started = _started[session]
        while started and now - started[0] > RATE_WINDOW_S:
            started.popleft()
        if limit.requests_per_minute and len(started) >= limit.requests_per_minute:
            wait = int(RATE_WINDOW_S - (now - started[0])) + 1
            raise gr.Error(f"Too many requests: this demo takes at most {limit.requests_per_minute} per minute "
                           f"from each visitor (requests_per_minute). Try again in {wait} s.")
        if _in_flight[session] >= 1 + limit.waiting_per_session:
            raise gr.Error(f"Busy: you already have {_in_flight[session]} requests running or waiting "
                           f"(at most 1 running and {limit.waiting_per_session} waiting). Wait for one "
                           "to finish, or press Stop, then try again.")
        if sum(_in_flight.values()) >= limits.MAX_IN_FLIGHT:
            raise gr.Error(f"Busy: the server has {limits.MAX_IN_FLIGHT} requests in progress. Try again in a minute.")
        started.append(now)
        _in_flight[session] += 1
        running = _running.setdefault(session, asyncio.Lock())
    try:
        async with running:
            yield
    finally:
        with _lock:
            _in_flight[session] -= 1
            if not _in_flight[session]:
                del _in_flight[session]
                _running.pop(session, None)
            if not _started[session]:
                del _started[session]


class Hub(gr.Blocks):
    """gr.Blocks whose refusals of file inputs name the input.

    Before an event runs, Gradio checks each file it was sent: a path that was not uploaded to this
    server, or a bare string instead of a file, is refused there with an error that reaches the
    caller as a bare "error" with no message. Here that refusal becomes a `gr.Error` naming the
    event's file inputs and saying to upload the file. Other errors pass unchanged.
    """

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except (InvalidPathError, pydantic.ValidationError):
            files = [block.label or "file" for block in block_fn.inputs
                     if isinstance(block, (gr.Image, gr.File, gr.ImageEditor, gr.Video, gr.Audio))]
            if not files:
                raise
            raise gr.Error(f"{' / '.join(files)}: only files uploaded to this page are accepted; upload the file "
                           "(with gradio_client: handle_file(path)) instead of sending a server path or text",
                           print_exception=False) from None


def in_flight() -> int:
    """Requests admitted now (running or waiting for their session's turn), over all sessions."""
    with _lock:
        return sum(_in_flight.values())
