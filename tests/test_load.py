"""The load bench (bench/load.py) in reduced form: 4 clients x 10 mixed requests over every endpoint of a
live `python app.py`, each result checked against its own seed and a reference made alone; a few soak
samples; the soak's verdicts on made-up samples; the host's file retention setting.

Nothing here asserts on time: the waits and the soak's growth figures are the bench's, on a quiet machine.
"""

from __future__ import annotations

import time

import pytest

import app
from bench import load
from demos import ui

CLIENTS, REQUESTS = 4, 10
LIMIT_S = 600.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("load")
    with load.served(folder) as started:
        yield started, folder


def test_concurrent_clients_get_their_own_results(server):
    started, folder = server
    requests = load.make_requests(REQUESTS, load.LOAD_SEED, folder)
    assert {r.endpoint for r in requests} == set(load.ENDPOINTS)
    deadline = time.monotonic() + LIMIT_S
    references = load.run_clients(started.url, requests, 1, folder / "references", deadline)
    outcomes = load.run_clients(started.url, requests, CLIENTS, folder / "load", deadline)
    assert len({o.client for o in outcomes}) == CLIENTS
    assert load.check_results(outcomes, references, folder) == []
    assert all(load.result_files(o.result, folder) for o in outcomes)  # pixels were compared, not skipped


def test_a_swapped_result_is_caught(server):
    started, folder = server
    requests = load.make_requests(2, 50_000, folder)  # a text-to-image and an image-to-image request
    deadline = time.monotonic() + LIMIT_S
    references = load.run_clients(started.url, requests, 1, folder / "swap", deadline)
    swapped = [load.Outcome(requests[0], 0, result=references[1].result[:1] + references[0].result[1:]),
               load.Outcome(requests[1], 0, result=references[1].result)]
    problems = load.check_results(swapped, references, folder)
    assert len(problems) == 1 and "SWAPPED: they are request 1's" in problems[0], problems


def test_soak_samples_the_server(server):
    started, folder = server
    sampler = load.Sampler(started)
    requests = load.make_requests(5, load.SOAK_SEED, folder)
    outcomes = load.run_clients(started.url, requests, 2, folder / "soak", time.monotonic() + LIMIT_S,
                                after_each=sampler.sample)
    assert load.check_results(outcomes, None, folder) == []
    assert [s.done for s in sampler.samples] == [1, 2, 3, 4, 5]
    assert all(s.rss > 0 and s.fds > 0 for s in sampler.samples)
    assert sampler.samples[-1].cache_files > 0  # the results it served are counted


def samples(rss: list[int], fds: list[int], oldest: list[float], step_s: float) -> list[load.Sample]:
    return [load.Sample(10 * i, step_s * i, r, f, 5, 1, 6, o) for i, (r, f, o) in enumerate(zip(rss, fds, oldest))]


@pytest.mark.parametrize(("rss", "fds", "oldest", "verdicts"), [
    ([100] * 10, [10] * 10, [20.0] * 10, [True, True, True]),
    ([100] * 7 + [106] * 3, [10] * 10, [20.0] * 10, [False, True, True]),
    ([100] * 10, list(range(10, 20)), [20.0] * 10, [True, False, True]),
    ([100] * 10, [10] * 10, [20.0 * i for i in range(10)], [True, True, False]),
])
def test_soak_verdicts(rss, fds, oldest, verdicts):
    # keep 10 s: files may live 2 x 10 + 10 = 30 s; samples 10 s apart over 90 s (after warm-up: 80 s >= 2 x 30)
    assert load.judge_soak(samples(rss, fds, oldest, 10.0), 90, 0.1, 10, lambda line: None) == verdicts


def test_a_soak_too_short_to_judge_files_fails():
    assert load.judge_soak(samples([100] * 10, [10] * 10, [1.0] * 10, 1.0), 90, 0.1, 10, lambda line: None)[-1] is False


def test_file_retention_is_one_host_setting(monkeypatch):
    monkeypatch.delenv(ui.KEEP_FILES_ENV, raising=False)
    assert ui.keep_files_s() == ui.KEEP_FILES_S == 3600 and app.cache_cleanup() == (3600, 3600)
    monkeypatch.setenv(ui.KEEP_FILES_ENV, "30")
    assert ui.keep_files_s() == 30 and app.cache_cleanup() == (30, 30)
    for bad in ("9", "-5", "1.5", "an hour"):
        monkeypatch.setenv(ui.KEEP_FILES_ENV, bad)
        with pytest.raises(ValueError, match=ui.KEEP_FILES_ENV):
            ui.keep_files_s()
