"""How the tabs' generator events are served to many users at once: admission, fair turns, Stop.

Every generator event goes through Gradio's queue (its direct REST route is closed in app.py) and
into `guarded`, which, per request:

1. counts it against the host's limits (`demos.limits`): requests per session per minute, requests
   per session at once (one running, a few waiting), requests in the whole app; beyond them the
   user gets a message that names the limit and says to try again;
2. waits (without a thread) for the session's earlier request to finish, so each session has one
   request running;
3. runs the tab's function in a worker thread; the core call inside it (`ui.call`) takes the device
   through `core.scheduling.DEVICE`, in slices (one step, tile or face) given to the least-served request
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
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import gradio as gr
import pydantic
from gradio.context import LocalContext
from gradio.exceptions import InvalidPathError

from core.scheduling import DEVICE, Job
from demos import limits

CURRENT_JOB: contextvars.ContextVar[Job | None] = contextvars.ContextVar("imagegen_job", default=None)
"""The device job of the request whose tab function runs in this thread (read by `ui.call`)."""
PREVIEW: contextvars.ContextVar[Callable[[Any], None] | None] = contextvars.ContextVar("imagegen_preview",
                                                                                    default=None)
"""Where the tab function of a streamed event (`guarded(..., preview=...)`) puts a preview picture:
a function, safe to call from its worker thread, that sends it to the page (read by `ui.call`)."""
LOCAL_SESSION = "local"
"""The session of calls without a Gradio request (a tab function called from Python)."""
RATE_WINDOW_S = 60.0
ABANDON_POLL_S = 1.0
"""How often a running request checks that its page or client is still there."""

_executor = ThreadPoolExecutor(max_workers=limits.MAX_IN_FLIGHT, thread_name_prefix="imagegen-job")
_lock = threading.Lock()
_in_flight: collections.Counter[str] = collections.Counter()  # session -> admitted requests
_from_address: collections.Counter[str] = collections.Counter()  # address -> admitted requests (public preset)
_started: collections.defaultdict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
_running: dict[str, asyncio.Lock] = {}


def session_of(request: gr.Request | None) -> str:
    """The session a request belongs to: Gradio's session hash (one per page load or gradio_client
    Client); LOCAL_SESSION without a request."""
    return str(getattr(request, "session_hash", None) or LOCAL_SESSION)


def visitor_of(request: gr.Request | None) -> str | None:
    """The network address a request came from: the first address of X-Forwarded-For on a Hugging
    Face Space (its proxy sets it), else the connecting address; None without a request."""
    if request is None:
        return None
    if os.environ.get("SPACE_ID"):
        forwarded = (request.headers.get("x-forwarded-for") or "").split(",")[0].strip()
        if forwarded:
            return forwarded
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


async def _cancel_when_abandoned(job: Job, event_id: str | None) -> None:
    """Cancel `job` once Gradio's queue marks its event as no longer wanted: the page was closed or
    the client went away (Gradio then sets the event's `alive` to False; gradio/queueing.py
    `clean_events`). Gradio has no public hook for this, so its queue's `active_jobs` are read with
    care: if they cannot be read, nothing is cancelled."""
    blocks = LocalContext.blocks.get(None)
    queue = getattr(blocks, "_queue", None)
    while event_id is not None and not job.cancelled:
        await asyncio.sleep(ABANDON_POLL_S)
        for running in getattr(queue, "active_jobs", None) or []:
            for event in running or []:
                if getattr(event, "_id", None) == event_id and getattr(event, "alive", True) is False:
                    job.cancel()
                    return


def guarded(fn: Callable[..., Any], *, preview: tuple[int, int] | None = None) -> Callable[..., Any]:
    """Wrap a tab's event function (sync, with a `request: gr.Request = None` parameter) for serving
    as described in the module docstring. The wrapper keeps `fn`'s signature and docstring, which
    Gradio reads for the inputs it injects and for the API page.

    `preview` = (index, count): the event streams. `fn` returns `count` outputs, and while it runs
    every picture it puts through `PREVIEW` is sent to the page as output `index`, the others left
    as they are (gr.skip()); the last message is `fn`'s own return value. gradio_client's `predict`
    gets that last value, as for any event.
    """
    signature = inspect.signature(fn)
    if "request" not in signature.parameters:
        raise TypeError(f"{fn.__name__} needs a `request: gr.Request = None` parameter to be guarded")

    @asynccontextmanager
    async def running(args: tuple, kwargs: dict, push: Callable[[Any], None] | None) -> AsyncIterator[asyncio.Future]:
        request = signature.bind_partial(*args, **kwargs).arguments.get("request")
        session = session_of(request)
        async with admitted(session, visitor_of(request)):
            job = DEVICE.enter(session)
            context = contextvars.copy_context()  # Gradio's own context (progress, warnings) too
            context.run(CURRENT_JOB.set, job)
            context.run(PREVIEW.set, push)
            watcher = asyncio.create_task(_cancel_when_abandoned(job, LocalContext.event_id.get(None)))
            work = asyncio.get_running_loop().run_in_executor(
                _executor, functools.partial(context.run, fn, *args, **kwargs))
            try:
                yield work
            except (asyncio.CancelledError, GeneratorExit):  # Stop, or a stream that Gradio closed
                job.cancel()  # the thread ends at its next step, tile or face
                work.add_done_callback(_retrieved)  # its "Stopped." has no one left to read it
                raise
            finally:
                watcher.cancel()

    if preview is None:
        @functools.wraps(fn)
        async def serve(*args: Any, **kwargs: Any) -> Any:
            async with running(args, kwargs, None) as work:
                return await work
        return serve

    index, count = preview

    @functools.wraps(fn)
    async def stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        loop, pictures = asyncio.get_running_loop(), asyncio.Queue()

        def push(picture: Any) -> None:
            loop.call_soon_threadsafe(pictures.put_nowait, picture)

        async with running(args, kwargs, push) as work:
            while not work.done():
                waiting = asyncio.ensure_future(pictures.get())
                await asyncio.wait({work, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():
                    waiting.cancel()
                    break
                yield tuple(waiting.result() if i == index else gr.skip() for i in range(count))
            yield await work
    return stream


def _retrieved(work: asyncio.Future) -> None:
    """Read an abandoned future's outcome, so asyncio does not log "exception was never retrieved"."""
    if not work.cancelled():
        work.exception()


@asynccontextmanager
async def admitted(session: str, visitor: str | None = None) -> AsyncIterator[None]:
    """Admit one request of `session`, from the address `visitor`, for the duration of the block,
    after the session's earlier one ended. With the public preset, the rate and the requests in
    progress are also counted per address, so a script that opens many sessions gains nothing.

    Raises:
        gr.Error: a limit of `demos.limits` is reached; the message names it and when to retry.
    """
    limit = limits.current()
    who = f"address {visitor}" if limit.public and visitor else session
    now = time.monotonic()
    with _lock:
        started = _started[who]
        while started and now - started[0] > RATE_WINDOW_S:
            started.popleft()
        if limit.requests_per_minute and len(started) >= limit.requests_per_minute:
            wait = int(RATE_WINDOW_S - (now - started[0])) + 1
            raise gr.Error(f"Too many requests: this demo takes at most {limit.requests_per_minute} per minute "
                           f"from each visitor ({limits.ENV['requests_per_minute']}). Try again in {wait} s.",
                           print_exception=False)
        if _in_flight[session] >= 1 + limit.waiting_per_session:
            raise gr.Error(f"Busy: you already have {_in_flight[session]} requests running or waiting "
                           f"(at most 1 running and {limit.waiting_per_session} waiting, "
                           f"{limits.ENV['waiting_per_session']}). Wait for one to finish, or press Stop, then "
                           "try again.", print_exception=False)
        if limit.per_visitor and who != session and _from_address[who] >= limit.per_visitor:
            raise gr.Error(f"Busy: {_from_address[who]} requests from your address are in progress (at most "
                           f"{limit.per_visitor}, {limits.ENV['per_visitor']}). Wait for one to finish, then "
                           "try again.", print_exception=False)
        if sum(_in_flight.values()) >= limits.MAX_IN_FLIGHT:
            raise gr.Error(f"Busy: the server has {limits.MAX_IN_FLIGHT} requests in progress. Try again in a minute.",
                           print_exception=False)
        started.append(now)
        counts = [(_in_flight, session)] + ([(_from_address, who)] if who != session else [])
        for counter, key in counts:
            counter[key] += 1
        running = _running.setdefault(session, asyncio.Lock())
    try:
        async with running:
            yield
    finally:
        with _lock:
            for counter, key in counts:
                counter[key] -= 1
                if not counter[key]:
                    del counter[key]
            if session not in _in_flight:
                _running.pop(session, None)
            if not _started[who]:
                del _started[who]


FILE_INPUTS = (gr.Image, gr.File, gr.ImageEditor, gr.Video, gr.Audio)


class Hub(gr.Blocks):
    """gr.Blocks whose refusals before an event runs say what is wrong.

    Before an event runs, Gradio checks what it was sent: the number of inputs, and each file. Too
    few inputs, a file path that was not uploaded to this server, or a bare string instead of a file
    are refused there with an error that reaches the caller as a bare "error" with no message, and a
    URL in place of a file is first downloaded by the server. Here a URL is refused before Gradio
    fetches it, and those refusals become a `gr.Error` that names the event's file inputs that were sent
    something (or the count of inputs) and says what to send. Other errors pass unchanged.
    """

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, list) and len(inputs) < len(block_fn.inputs):
            raise gr.Error(f"This endpoint takes {len(block_fn.inputs)} inputs and got {len(inputs)}: send them "
                           "all (gradio_client fills in the ones you leave out)", print_exception=False)
        sent = [(block.label or "file", value) for block, value in zip(block_fn.inputs, inputs or [])
                if isinstance(block, FILE_INPUTS)]
        urls = [label for label, value in sent if _is_url(value)]
        files = [label for label, value in sent if value not in (None, "", [], {})] or [label for label, _ in sent]
        if urls:  # the file inputs given something: those that can be the one refused (an empty one is not)
            raise gr.Error(f"{' / '.join(urls)}: a URL is not fetched by this server; download the "
                           "picture and upload the file (with gradio_client: handle_file(path))",
                           print_exception=False)
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except (InvalidPathError, pydantic.ValidationError):
            if not files:
                raise
            raise gr.Error(f"{' / '.join(files)}: only files uploaded to this page are accepted; upload the file "
                           "(with gradio_client: handle_file(path)) instead of sending a server path or text",
                           print_exception=False) from None


def _is_url(value: Any) -> bool:
    """True for a file payload (FileData dict) that points at an http(s) address instead of an upload
    (an upload has a server path; its `url` is this server's own file route)."""
    if not isinstance(value, dict):
        return False
    where = str(value.get("path") or value.get("url") or "").lower()
    return where.startswith(("http://", "https://"))


def in_flight() -> int:
    """Requests admitted now (running or waiting for their session's turn), over all sessions."""
    with _lock:
        return sum(_in_flight.values())
