"""Fair turns on one device: the requests of many users take the device in slices, least-served first.

A hub serves strangers on one CPU or GPU. Running their requests one after another makes a 1-second
request wait behind a 4-minute upscale; running them all at once makes every one slow and can run
the machine out of memory. Here each request's job holds the device only between two *checkpoints*
(one denoising step, one tile, one face: the generators' `on_step`). At each checkpoint the job
hands the device over when a waiting job has had less device time so far; otherwise it goes on at
once. So a new request waits for at most one slice of a long one, then runs until it has had as
much device time as the long one (usually: to its end), and two long requests alternate. This is
least attained service, the classic policy for job sizes that are unknown in advance and vary a
lot (Kleinrock, "Queueing Systems, Vol. 2", 1976, sec. 4.6; Nuyens and Wierman, "The
Foreground-Background queue: a survey", Performance Evaluation 65, 2008).

It favours short requests by design; a session cannot use that to starve a long request with a
stream of short ones beyond the host's limits (one running request per session and a rate per
minute: demos/serving.py). Device time is counted per job, from its first turn to its end.

`Job.cancel()` (the Stop button, a cancelled API call) makes the job's next checkpoint, or its wait
for a turn, raise `core.Cancelled`; other jobs are untouched.

No torch, no gradio: any host (the Gradio tabs, a CLI, a worker) can use it.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Callable, TypeVar

from core.errors import Cancelled

T = TypeVar("T")

SWITCH_MARGIN_S = 0.05
"""A waiting job takes the device only when it was served this many seconds less: two long jobs
then swap every few slices instead of at every step."""


class Job:
    """One request's claim on the device. Made by `FairDevice.enter`; its `checkpoint` is passed to the
    generator as (part of) `on_step`."""

    def __init__(self, device: FairDevice, session: str, order: int) -> None:
        self.device, self.session, self.order = device, session, order
        self._cancelled = threading.Event()
        self.served_s = 0.0
        """Seconds the job held the device in its finished slices."""

    @property
    def cancelled(self) -> bool:
        """True once `cancel()` was called."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop this job at its next checkpoint (or while it waits for a turn). Thread-safe; idempotent."""
        self._cancelled.set()
        self.device._wake()

    def checkpoint(self, done: int = 0, total: int = 0) -> None:
        """Call between two slices of work (e.g. as `on_step(done, total)`; the counts are not used).

        Raises:
            Cancelled: `cancel()` was called (`FairDevice.run` then releases the device).
        """
        if self.cancelled:
            raise Cancelled("Stopped.")
        self.device._maybe_hand_over(self)


class FairDevice:
    """The device shared by every job of this process (see the module docstring).

    Usage:
        job = device.enter(session_id)      # job.cancel() from another thread stops it
        device.run(job, lambda job: generator(..., on_step=job.checkpoint))
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Condition()
        self._holder: Job | None = None
        self._since = 0.0  # when the holder's current slice began
        self._waiting: list[Job] = []
        self._order = itertools.count()

    # -- public -----------------------------------------------------------------------------------

    def enter(self, session: str) -> Job:
        """A new job of `session` (any text that tells users apart, e.g. Gradio's session hash) that
        has not asked for a turn yet; it can be cancelled from any thread from now on."""
        return Job(self, session, next(self._order))

    def run(self, job: Job, work: Callable[[Job], T]) -> T:
        """Wait for `job`'s first turn, run `work(job)` holding the device (`work` passes
        `job.checkpoint` to the generator as `on_step`), release the device after, also on error.

        Raises:
            Cancelled: the job was cancelled before or during the work.
        """
        self._acquire(job)
        try:
            return work(job)
        finally:
            self._release(job)

    def busy(self) -> bool:
        """True while some job holds the device."""
        with self._lock:
            return self._holder is not None

    def waiting(self) -> int:
        """How many jobs wait for a turn now."""
        with self._lock:
            return len(self._waiting)

    # -- internals (under self._lock) -------------------------------------------------------------

    def _service(self, job: Job, now: float) -> float:
        """Seconds `job` has held the device, its current slice included."""
        return job.served_s + (now - self._since if job is self._holder else 0.0)

    def _next(self, now: float) -> Job | None:
        """The waiting job that should run next: least served, then first come."""
        if not self._waiting:
            return None
        return min(self._waiting, key=lambda j: (self._service(j, now), j.order))

    def _acquire(self, job: Job) -> None:
        with self._lock:
            self._waiting.append(job)
            try:
                while not job.cancelled and not (self._holder is None and self._next(self._clock()) is job):
                    self._lock.wait()
            finally:
                self._waiting.remove(job)
            if job.cancelled:
                self._lock.notify_all()
                raise Cancelled("Stopped before it started.")
            self._holder, self._since = job, self._clock()

    def _release(self, job: Job) -> None:
        with self._lock:
            if self._holder is job:
                job.served_s += self._clock() - self._since
                self._holder = None
            self._lock.notify_all()

    def _maybe_hand_over(self, job: Job) -> None:
        with self._lock:
            now = self._clock()
            rival = self._next(now)
            if rival is None or self._service(rival, now) + SWITCH_MARGIN_S >= self._service(job, now):
                return
        self._release(job)
        self._acquire(job)

    def _wake(self) -> None:
        with self._lock:
            self._lock.notify_all()


DEVICE = FairDevice()
"""The one device of this process."""
