"""One count of a request's work for `on_step`, across its stages; memory let go when it fails or stops.

Every generator calls on_step(done, total) after each unit of work: a denoising step, a tile, a
face. The host uses each call to move a progress bar, to hand the device to another user's request
(a fair scheduler), and to stop the request: an exception raised by on_step (`core.Cancelled` for
the Stop button) leaves the generator unchanged, so no more work is done after it. A request may
have several stages (denoising, then enlarging each image tile by tile); `Progress` adds them into
one monotonic count, whose total grows when more work turns up (tiles redone after halving them,
a redo in float32, the faces found in a picture).
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator

OnStep = Callable[[int, int], None]


class Progress:
    """The units done and planned of one request, reported to `on_step` (None: nobody listens).

    Args:
        on_step: the caller's on_step(done, total), or a stage of an outer Progress (`part`).
        total: units planned so far; `add` and `part` change it as the work goes.
    """

    def __init__(self, on_step: OnStep | None, total: int = 0) -> None:
        self.on_step, self.done, self.total = on_step, 0, total

    def add(self, units: int) -> None:
        """More work than planned (e.g. a stage run again); reported with the next step."""
        self.total += units

    def step(self) -> None:
        """One unit done: report it. Whatever on_step raises goes out unchanged."""
        self.done += 1
        self._report()

    def part(self, planned: int) -> OnStep:
        """An on_step(done, total) for one stage, planned as `planned` of our units: each unit it
        reports is one of ours, and when its total moves from `planned`, ours moves with it."""
        seen = [0, planned]  # the stage's units reported so far, its total as we count it

        def report(done: int, total: int) -> None:
            self.total += total - seen[1]
            self.done += done - seen[0]
            seen[:] = [done, total]
            self._report()
        return report

    def _report(self) -> None:
        if self.on_step is not None:
            self.on_step(self.done, max(self.total, self.done))


@contextlib.contextmanager
def freed_on_failure() -> Iterator[None]:
    """Around the device-bound part of a generator: when it raises (a cancel from on_step included),
    drop the tensors its finished frames still hold (the exception's traceback keeps them alive
    while it travels up) and give the GPU's cached blocks back; the exception then goes on unchanged.
    Its traceback keeps file names and line numbers, only the frames' local variables are cleared."""
    try:
        yield
    except BaseException as err:
        traceback.clear_frames(err.__traceback__)
        import torch

        torch.cuda.empty_cache()  # a no-op where CUDA was never used
        raise
