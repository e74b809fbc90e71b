"""core.scheduling: jobs take the device in slices, least-served first; cancel stops a job.

The jobs here are threads whose "work" is a loop of checkpoints; a fake clock that each slice of
work advances makes device time exact, so the order of slices is deterministic.
"""

from __future__ import annotations

import threading

import pytest

from core import Cancelled
from core.scheduling import FairDevice

WAIT_S = 30  # a generous bound for a thread handshake; never reached unless the scheduler deadlocks


class Clock:
    """A clock that only moves when a job says it worked."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def start(device: FairDevice, clock: Clock, session: str, steps: int, step_s: float, log: list[str],
          before_step=None) -> tuple[threading.Thread, list[BaseException]]:
    """A job of `session` in a thread: `steps` slices of `step_s` device seconds, each logged."""
    errors: list[BaseException] = []
    job = device.enter(session)

    def work(job) -> None:
        for i in range(steps):
            if before_step is not None:
                before_step(i)
            clock.now += step_s
            log.append(session)
            job.checkpoint(i + 1, steps)

    def target() -> None:
        try:
            device.run(job, work)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            errors.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.job = job
    thread.start()
    return thread, errors


def wait_for(condition, what: str) -> None:
    ready = threading.Event()
    for _ in range(WAIT_S * 100):
        if condition():
            return
        ready.wait(0.01)
    pytest.fail(f"timed out waiting for {what}")


def test_a_new_job_waits_for_one_slice_of_a_long_one_then_runs_to_its_end():
    clock, log = Clock(), []
    device = FairDevice(clock=clock)
    arrived = threading.Event()

    def let_short_job_arrive(i: int) -> None:
        if i == 3:  # the long job has had 3 s of device time: now a short job comes
            short_thread, _ = start(device, clock, "short", 4, 0.1, log)
            wait_for(lambda: device.waiting() == 1, "the short job to wait")
            arrived.set()

    long_thread, long_errors = start(device, clock, "long", 10, 1.0, log, before_step=let_short_job_arrive)
    long_thread.join(WAIT_S)
    assert arrived.is_set() and not long_errors
    # the long job finishes the slice it is in (its 4th step), then the short job runs all 4 of its steps
    assert log == ["long"] * 4 + ["short"] * 4 + ["long"] * 6


def test_two_long_jobs_of_two_sessions_take_turns():
    clock, log = Clock(), []
    device = FairDevice(clock=clock)
    gate = threading.Event()
    first, _ = start(device, clock, "a", 6, 1.0, log, before_step=lambda i: gate.wait(WAIT_S) if i == 0 else None)
    wait_for(device.busy, "the first job to hold the device")
    second, _ = start(device, clock, "b", 6, 1.0, log)
    wait_for(lambda: device.waiting() == 1, "the second job to wait")
    gate.set()
    first.join(WAIT_S), second.join(WAIT_S)
    assert sorted(log) == ["a"] * 6 + ["b"] * 6
    longest_run = max(len(run) for run in "".join(log).replace("ab", "a b").replace("ba", "b a").split())
    assert longest_run <= 2, log  # neither holds the device for more than a step past the other's service


def test_of_two_waiting_jobs_the_less_served_goes_first():
    """H has had 2 s when B arrives and takes over; A arrives while B holds: after B, A (0 s) runs
    before H (2 s), though H came first."""
    clock, log = Clock(), []
    device = FairDevice(clock=clock)
    gate = threading.Event()
    arrived = threading.Event()

    def let_b_arrive(i: int) -> None:
        if i == 1:
            start(device, clock, "B", 1, 0.1, log, before_step=lambda i: gate.wait(WAIT_S))
            wait_for(lambda: device.waiting() == 1, "B to wait")
            arrived.set()

    h, _ = start(device, clock, "H", 3, 1.0, log, before_step=let_b_arrive)
    wait_for(lambda: arrived.is_set() and log == ["H", "H"] and device.waiting() == 1, "H to hand over to B")
    a, _ = start(device, clock, "A", 1, 0.1, log)
    wait_for(lambda: device.waiting() == 2, "A and H to wait")
    gate.set()
    h.join(WAIT_S), a.join(WAIT_S)
    assert log == ["H", "H", "B", "A", "H"]
    assert h.job.served_s == pytest.approx(3.0) and a.job.served_s == pytest.approx(0.1)


def test_cancel_stops_a_running_job_at_its_next_checkpoint_and_frees_the_device():
    clock, log = Clock(), []
    device = FairDevice(clock=clock)
    stepped, cancelled = threading.Event(), threading.Event()
    thread, errors = start(device, clock, "a", 1000, 0.01, log,
                           before_step=lambda i: (stepped.set(), cancelled.wait(WAIT_S)) if i == 5 else None)
    wait_for(stepped.is_set, "five steps")
    thread.job.cancel()
    cancelled.set()
    thread.join(WAIT_S)
    assert len(log) == 6 and isinstance(errors[0], Cancelled)  # the step under way, then nothing
    assert not device.busy()
    other, other_errors = start(device, clock, "b", 2, 0.01, log)
    other.join(WAIT_S)
    assert not other_errors and log[-2:] == ["b", "b"]


def test_cancel_while_waiting_leaves_the_queue_and_the_holder_untouched():
    clock, log = Clock(), []
    device = FairDevice(clock=clock)
    gate = threading.Event()
    holder, holder_errors = start(device, clock, "a", 3, 1.0, log, before_step=lambda i: gate.wait(WAIT_S))
    wait_for(device.busy, "a holder")
    waiter, waiter_errors = start(device, clock, "b", 3, 1.0, log)
    wait_for(lambda: device.waiting() == 1, "a waiter")
    waiter.job.cancel()
    waiter.join(WAIT_S)
    assert isinstance(waiter_errors[0], Cancelled) and device.waiting() == 0
    gate.set()
    holder.join(WAIT_S)
    assert not holder_errors and log == ["a"] * 3


def test_an_error_in_the_work_releases_the_device():
    device = FairDevice()
    with pytest.raises(ZeroDivisionError):
        device.run(device.enter("a"), lambda job: 1 / 0)
    assert not device.busy()
    assert device.run(device.enter("b"), lambda job: "ran") == "ran"
