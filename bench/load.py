"""Load and soak: many gradio_client users at once on one hub, on loopback (issue 12, item 10).

The hub runs as `python app.py --port N --no-public` in a subprocess (127.0.0.1 only) with
HF_HUB_OFFLINE=1, IMAGEGEN_PUBLIC=0, IMAGEGEN_REQUESTS_PER_MINUTE=0, and its own GRADIO_TEMP_DIR and
TMPDIR (so its output folder, `ui.output_dir()`, lies where this bench counts it); or `--url` names a
running one (load only). Requests are small: a 4-step 32-px emoji, a 4-step image to image of a
demos/examples photo, one 64-px DCGAN face, a 2-frame morph (GIF and MP4), x4 of a 24-px noise picture.

Load (--clients, default 20; --requests, default 200): request i goes to endpoint i mod 5
(/text_to_image, /image_to_image, /generate_faces, /interpolate_faces, /upscale) with its own seed
(/upscale: its own noise picture made from that seed). Each client is its own Client (its own
session) and gets a contiguous run of the list, so every client sends every endpoint; it sends its
requests one after another, as a user who waits for each result; all clients start together.
Before the load, one more client sends every request alone, one at a time: the references.
  failures   every request returns a result; one not sent before --time-limit counts as failed
  results    "Seeds used" equals the seed asked for, and the decoded pixels of every returned
             picture (gallery, GIF frames, upscale preview and download) equal the reference's
             (sha256 of mode, size and pixels; PNG bytes may differ). A mismatch that equals
             another request's reference is reported as swapped with it
  waits      submit to result (upload and download included): p50/p95 overall and per endpoint,
             each client's median; PASS when no client's median is over 2x the median of all waits
Soak (--soak N): a fresh server with IMAGEGEN_KEEP_FILES_S=K (--keep-files-s, 30); --soak-clients
(4) clients send N requests as above (new seeds, so every result is a new file; "Seeds used" checked).
After every --sample-every requests (default N/50) and at the end: the server's resident memory and
open file descriptors (/proc/PID/fd, psutil; process and children summed) and the files under its
GRADIO_TEMP_DIR and its output folder. Warm-up: the first --warmup (10 %) of the requests.
  memory     median RSS of the last 3 samples vs the first 3 after warm-up: growth under 5 %
  open files the largest fd count in the second half of the samples after warm-up is at most the
             largest in the first half
  temp files Gradio deletes, every K s, served files older than K s (by ctime); `ui.new_path` deletes
             output files older than K s at each new output. So no counted file may be older than
             B = 2K + max(10, K/2) s (ctime) at any sample taken B s or more after the soak began;
             files there before the first request (the examples, kept on purpose) are not counted.
             The soak must run at least 2B s after warm-up, or it cannot judge (FAIL).
             Folders are counted and reported, not judged.
Each criterion prints PASS or FAIL; the exit status is 0 when all pass, 1 on a FAIL, 2 when the
bench could not run. Everything goes to stdout and to --log.

    python bench/load.py                          # load: 20 clients, 200 requests
    python bench/load.py --soak 1000              # and the soak (what bench/results/load.log holds)
    python bench/load.py --clients 4 --requests 20 --soak 240 --keep-files-s 10 --log /tmp/load.log  # a look
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for _folder in (REPO, REPO / "tests", REPO / "bench"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import numpy as np
from machine import cpu_description
from PIL import Image, ImageSequence

ENDPOINTS = ("/text_to_image", "/image_to_image", "/generate_faces", "/interpolate_faces", "/upscale")
PROMPTS = ("red apple", "grinning face", "rocket", "slice of pizza")
FACE_MODEL = "dcgan-digiface-64"
"""The faces requests name the 64-px DCGAN: the bench measures serving many clients, not a face model."""
PHOTOS = tuple(sorted((REPO / "demos" / "examples").glob("*.png")))
UPSCALE_SIDE = 24
START_LIMIT_S = 300.0
REQUEST_LIMIT_S = 600.0
FAIRNESS = 2.0
RSS_GROWTH = 0.05
LOAD_SEED, SOAK_SEED = 1000, 1_000_000


@dataclasses.dataclass(frozen=True)
class Request:
    """One API call: `kwargs` for Client.submit (an `image` is a local path, uploaded when sent)."""

    index: int
    endpoint: str
    seed: int
    kwargs: dict[str, Any]

    @property
    def seeds_text(self) -> str | None:
        """What "Seeds used" must say (None: /upscale has no seed)."""
        special = {"/interpolate_faces": f"{self.seed}, {self.seed + 1}", "/upscale": None}
        return special.get(self.endpoint, str(self.seed))


@dataclasses.dataclass
class Outcome:
    """What one request got: its wait (s, submit to result), error or result, its client."""

    request: Request
    client: int
    wait_s: float = 0.0
    error: str | None = None
    result: Any = None


@dataclasses.dataclass
class Server:
    url: str
    process: subprocess.Popen | None = None
    temp_dir: Path | None = None  # its GRADIO_TEMP_DIR
    output_dir: Path | None = None  # its ui.output_dir()
    keep_files_s: int | None = None


def make_requests(count: int, first_seed: int, folder: Path) -> list[Request]:
    """`count` requests cycling over ENDPOINTS, request i with seed first_seed + 2i (a morph also uses
    seed + 1); /upscale pictures are written to `folder`."""
    requests = []
    for i in range(count):
        endpoint, seed = ENDPOINTS[i % len(ENDPOINTS)], first_seed + 2 * i
        prompt = PROMPTS[i % len(PROMPTS)]
        kwargs: dict[str, Any] = {
            "/text_to_image": {"prompt": prompt, "steps": 4, "upscale": "off", "seed": seed},
            "/image_to_image": {"image": str(PHOTOS[i % len(PHOTOS)]), "prompt": prompt, "strength": 0.6,
                                "steps": 4, "upscale": "off", "seed": seed},
            "/generate_faces": {"count": 1, "seed": seed, "upscale": False, "model": FACE_MODEL, "size": 0},
            "/interpolate_faces": {"seed_a": seed, "seed_b": seed + 1, "frames": 2, "upscale": False,
                                   "more_seeds": "", "model": FACE_MODEL, "size": 0},
            "/upscale": {"image": None},
        }[endpoint]
        if endpoint == "/upscale":
            path = folder / f"noise-{seed}.png"
            noise = np.random.default_rng(seed).integers(0, 256, (UPSCALE_SIDE, UPSCALE_SIDE, 3), dtype=np.uint8)
            Image.fromarray(noise).save(path)
            kwargs["image"] = str(path)
        requests.append(Request(i, endpoint, seed, kwargs))
    return requests


def send(client: Any, request: Request, client_id: int, deadline: float) -> Outcome:
    """Send `request` through `client` and wait for its result (at most REQUEST_LIMIT_S, and not
    past `deadline`, a time.monotonic() value)."""
    from gradio_client import handle_file

    outcome = Outcome(request, client_id)
    kwargs = {k: handle_file(v) if k == "image" else v for k, v in request.kwargs.items()}
    started = time.monotonic()
    if started >= deadline:
        outcome.error = "not sent: --time-limit reached"
        return outcome
    job = client.submit(api_name=request.endpoint, **kwargs)
    try:
        outcome.result = job.result(timeout=min(REQUEST_LIMIT_S, deadline - started))
    except Exception as err:  # noqa: BLE001 (every failure is counted and shown)
        job.cancel()
        outcome.error = f"{type(err).__name__}: {err}"[:300]
    outcome.wait_s = time.monotonic() - started
    return outcome


def run_clients(url: str, requests: list[Request], clients: int, downloads: Path, deadline: float,
                after_each: Callable[[int], None] | None = None) -> list[Outcome]:
    """Send `requests` from `clients` Clients at once, client k a contiguous run of the list, one
    request at a time; `after_each(done)` is called after each result. Returns outcomes in list order."""
    from gradio_client import Client

    sessions = [Client(url, verbose=False, download_files=str(downloads)) for _ in range(clients)]
    bounds = [len(requests) * k // clients for k in range(clients + 1)]
    outcomes: list[Outcome | None] = [None] * len(requests)
    lock, done, start = threading.Lock(), [0], threading.Barrier(clients)

    def work(k: int) -> None:
        start.wait()
        for i in range(bounds[k], bounds[k + 1]):
            outcomes[i] = send(sessions[k], requests[i], k, deadline)
            with lock:
                done[0] += 1
                if after_each is not None:
                    after_each(done[0])

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for session in sessions:
        session.close()
    return [o or Outcome(r, -1, error="lost: no outcome") for o, r in zip(outcomes, requests)]


def result_files(value: Any, downloads: Path) -> list[Path]:
    """The downloaded files in a result (gallery items, preview pair, GIF, PNG), in order."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in result_files(v, downloads)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in result_files(v, downloads)]
    if isinstance(value, str) and value.startswith(str(downloads)) and Path(value).is_file():
        return [Path(value)]
    return []


def pixels_digest(path: Path) -> str:
    """sha256 of every frame's mode, size and decoded pixels (palette frames as RGBA; an MP4's frames
    decoded to RGB with PyAV)."""
    digest = hashlib.sha256()
    if Path(path).suffix.lower() == ".mp4":
        import av

        with av.open(str(path)) as video:
            for frame in video.decode(video=0):
                array = frame.to_ndarray(format="rgb24")
                digest.update(f"RGB{array.shape}".encode())
                digest.update(array.tobytes())
        return digest.hexdigest()
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            frame = frame.convert("RGBA") if frame.mode in ("P", "PA") else frame
            digest.update(f"{frame.mode}{frame.size}".encode())
            digest.update(np.asarray(frame).tobytes())
    return digest.hexdigest()


def seeds_of(outcome: Outcome) -> str | None:
    """The "Seeds used" text of a result (None for /upscale)."""
    where = {"/interpolate_faces": 3, "/upscale": None}.get(outcome.request.endpoint, 1)
    return None if where is None else outcome.result[where]


def check_results(outcomes: list[Outcome], references: list[Outcome] | None, downloads: Path) -> list[str]:
    """One line per wrong outcome: failed, wrong seeds, or pixels unlike its reference (naming the
    request whose reference they match, if any). Empty when all are right."""
    problems = []
    digests = {}
    if references is not None:
        digests = {r.request.index: tuple(pixels_digest(p) for p in result_files(r.result, downloads))
                   for r in references if r.error is None}
    owner = {d: i for i, d in digests.items()}
    for o in outcomes:
        name = f"request {o.request.index} ({o.request.endpoint}, seed {o.request.seed}, client {o.client})"
        if o.error is not None:
            problems.append(f"{name} failed: {o.error}")
        elif seeds_of(o) != o.request.seeds_text:
            problems.append(f"{name}: seeds used {seeds_of(o)!r}, asked {o.request.seeds_text!r}")
        elif references is not None:
            got = tuple(pixels_digest(p) for p in result_files(o.result, downloads))
            want = digests.get(o.request.index)
            if want is None:
                problems.append(f"{name}: no reference (the reference request failed)")
            elif got != want:
                other = owner.get(got)
                problems.append(f"{name}: pixels differ from its reference" +
                                (f"; SWAPPED: they are request {other}'s" if other is not None else
                                 "; they match no other request"))
    return problems


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report_waits(outcomes: list[Outcome], out: Callable[[str], None]) -> bool:
    """Print p50/p95 of waits overall and per endpoint and each client's median; returns whether no
    client's median is over FAIRNESS x the median of all waits."""
    ok = [o for o in outcomes if o.error is None]
    if not ok:
        out("waits: no successful request")
        return False
    out(f"{'waits (s)':<22}{'n':>5}{'p50':>8}{'p95':>8}{'max':>8}")
    groups = {"all": ok, **{e: [o for o in ok if o.request.endpoint == e] for e in ENDPOINTS}}
    for label, group in groups.items():
        waits = [o.wait_s for o in group]
        if waits:
            p50, p95 = percentile(waits, 50), percentile(waits, 95)
            out(f"{label:<22}{len(waits):>5}{p50:>8.2f}{p95:>8.2f}{max(waits):>8.2f}")
    overall = statistics.median(o.wait_s for o in ok)
    medians = {c: statistics.median(o.wait_s for o in ok if o.client == c) for c in sorted({o.client for o in ok})}
    out("client medians (s): " + ", ".join(f"{c}: {m:.2f}" for c, m in medians.items()))
    worst = max(medians, key=medians.get)
    fair = medians[worst] <= FAIRNESS * overall
    out(f"{'PASS' if fair else 'FAIL'} fairness: largest client median {medians[worst]:.2f} s (client {worst}) "
        f"= {medians[worst] / overall:.2f}x the median of all waits {overall:.2f} s (limit {FAIRNESS:g}x)")
    return fair


def start_server(folder: Path, keep_files_s: int | None = None) -> Server:
    """`python app.py --port N --no-public` on 127.0.0.1 with its own GRADIO_TEMP_DIR and TMPDIR under
    `folder`, served (raises RuntimeError when it exits or does not serve within START_LIMIT_S)."""
    import pytest
    from servers import free_port, start_app, wait_until_served

    temp_dir, tmp = folder / "gradio", folder / "tmp"
    temp_dir.mkdir(parents=True)
    tmp.mkdir()
    env = server_env(temp_dir, tmp, keep_files_s)
    port = free_port()
    url, log_path = f"http://127.0.0.1:{port}/", folder / "app.log"
    process = start_app([sys.executable, "app.py", "--port", str(port), "--no-public"], cwd=REPO, env=env,
                        log_path=log_path)
    try:
        wait_until_served(url, process, log_path, START_LIMIT_S)
    except pytest.fail.Exception as err:
        stop_server(Server(url, process))
        raise RuntimeError(str(err)) from None
    outputs = list(tmp.glob("imagegen-hub-*"))
    return Server(url, process, temp_dir, outputs[0] if len(outputs) == 1 else None, keep_files_s)


def server_env(temp_dir: Path, tmp: Path, keep_files_s: int | None) -> dict[str, str]:
    """This process's environment for the server: local mode, no rate limit, offline, loopback, its folders."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID", "IMAGEGEN_KEEP_FILES_S")}
    env.update(HF_HUB_OFFLINE="1", IMAGEGEN_PUBLIC="0", IMAGEGEN_REQUESTS_PER_MINUTE="0",
               GRADIO_TEMP_DIR=str(temp_dir), TMPDIR=str(tmp), GRADIO_ANALYTICS_ENABLED="False")
    if keep_files_s is not None:
        env["IMAGEGEN_KEEP_FILES_S"] = str(keep_files_s)
    return env


def stop_server(server: Server) -> None:
    from servers import stop

    if server.process is not None:
        stop(server.process)


@contextlib.contextmanager
def served(folder: Path, keep_files_s: int | None = None, url: str | None = None) -> Iterator[Server]:
    """A started server (stopped after the block), or the running one at `url`."""
    if url:
        yield Server(url if url.endswith("/") else url + "/")
        return
    server = start_server(folder, keep_files_s)
    try:
        yield server
    finally:
        stop_server(server)


def run_load(server: Server, clients: int, count: int, folder: Path, deadline: float,
             out: Callable[[str], None]) -> bool:
    """References, then the load; prints the checks and waits; returns whether all passed."""
    folder.mkdir(parents=True, exist_ok=True)
    requests = make_requests(count, LOAD_SEED, folder)
    started = time.monotonic()
    references = run_clients(server.url, requests, 1, folder / "references", deadline)
    out(f"references: {count} requests alone, one at a time, in {time.monotonic() - started:.1f} s")
    for r in references:
        if r.error is not None:
            out(f"  reference of request {r.request.index} ({r.request.endpoint}) failed: {r.error}")
    started = time.monotonic()
    outcomes = run_clients(server.url, requests, clients, folder / "load", deadline)
    out(f"load: {clients} clients, {count} requests in {time.monotonic() - started:.1f} s")
    problems = check_results(outcomes, references, folder)
    for line in problems[:20]:
        out(f"  {line}")
    failed = sum(o.error is not None for o in outcomes)
    wrong = len(problems) - failed
    out(f"{'PASS' if not failed else 'FAIL'} failures: {failed} of {count}")
    out(f"{'PASS' if not wrong else 'FAIL'} lost or swapped results: {wrong} of {count} "
        "(seeds used and decoded pixels vs each request's reference)")
    fair = report_waits(outcomes, out)
    return not problems and fair


@dataclasses.dataclass
class Sample:
    done: int  # requests finished
    t_s: float  # since the first request
    rss: int  # bytes, server and children
    fds: int
    cache_files: int  # under GRADIO_TEMP_DIR, not counting those present before the first request
    output_files: int  # under the output folder, likewise
    folders: int  # under both, all
    oldest_s: float  # age (ctime) of the oldest counted file; 0 when none


class Sampler:
    """Samples the server's resources (see Sample) on demand."""

    def __init__(self, server: Server) -> None:
        import psutil

        self.process = psutil.Process(server.process.pid)
        self.folders = [f for f in (server.temp_dir, server.output_dir) if f is not None]
        self.before = set(self._files())
        self.started = time.time()
        self.samples: list[Sample] = []

    def _files(self) -> Iterator[Path]:
        for folder in self.folders:
            yield from (p for p in folder.rglob("*") if p.is_file())

    def _ctime(self, path: Path) -> float | None:
        try:
            return path.stat().st_ctime
        except FileNotFoundError:  # deleted meanwhile
            return None

    def sample(self, done: int) -> Sample:
        import psutil

        procs = [self.process, *self.process.children(recursive=True)]
        rss = fds = 0
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                rss += proc.memory_info().rss
                fds += len(os.listdir(f"/proc/{proc.pid}/fd"))
        now, counts, oldest = time.time(), [0, 0], 0.0
        for i, folder in enumerate(self.folders[:2]):
            for path in folder.rglob("*"):
                ctime = self._ctime(path) if path.is_file() and path not in self.before else None
                if ctime is not None:
                    counts[i] += 1
                    oldest = max(oldest, now - ctime)
        folders = sum(1 for folder in self.folders for p in folder.rglob("*") if p.is_dir())
        sample = Sample(done, now - self.started, rss, fds, counts[0], counts[1], folders, oldest)
        self.samples.append(sample)
        return sample


def run_soak(server: Server, clients: int, count: int, every: int, warmup: float, folder: Path, deadline: float,
             out: Callable[[str], None]) -> bool:
    """The soak (module docstring); prints the samples and the verdicts; returns whether all passed."""
    requests = make_requests(count, SOAK_SEED, folder)
    sampler = Sampler(server)
    out(f"soak: {clients} clients, {count} requests, IMAGEGEN_KEEP_FILES_S={server.keep_files_s}; "
        f"{len(sampler.before)} files present before the first request (not counted); sampled every {every}")
    out(f"{'done':>6}{'t s':>8}{'RSS MiB':>9}{'fds':>6}{'cache files':>13}{'output files':>14}{'folders':>9}"
        f"{'oldest s':>10}")

    def show(s: Sample) -> None:
        out(f"{s.done:>6}{s.t_s:>8.1f}{s.rss / 2**20:>9.1f}{s.fds:>6}{s.cache_files:>13}{s.output_files:>14}"
            f"{s.folders:>9}{s.oldest_s:>10.1f}")

    show(sampler.sample(0))
    outcomes = run_clients(server.url, requests, clients, folder / "soak", deadline,
                           after_each=lambda done: show(sampler.sample(done)) if done % every == 0 else None)
    if count % every:
        show(sampler.sample(count))
    problems = check_results(outcomes, None, folder)
    for line in problems[:20]:
        out(f"  {line}")
    verdicts = [not problems]
    out(f"{'PASS' if not problems else 'FAIL'} soak results: {len(problems)} of {count} failed or with wrong seeds")
    verdicts += judge_soak(sampler.samples, count, warmup, server.keep_files_s, out)
    return all(verdicts)


def judge_soak(samples: list[Sample], count: int, warmup: float, keep_s: int | None,
               out: Callable[[str], None]) -> list[bool]:
    """The memory, open-files and temporary-files verdicts of the module docstring."""
    after = [s for s in samples if s.done >= warmup * count]
    if len(after) < 6:
        out(f"FAIL soak: {len(after)} samples after warm-up, need 6 (send more requests or sample more often)")
        return [False]
    first, last = statistics.median(s.rss for s in after[:3]), statistics.median(s.rss for s in after[-3:])
    growth = last / first - 1
    verdicts = [growth < RSS_GROWTH]
    out(f"{'PASS' if verdicts[-1] else 'FAIL'} memory: RSS {first / 2**20:.1f} MiB after warm-up -> "
        f"{last / 2**20:.1f} MiB at the end ({growth:+.1%}, limit +{RSS_GROWTH:.0%})")
    half = len(after) // 2
    early, late = max(s.fds for s in after[:half]), max(s.fds for s in after[half:])
    verdicts.append(late <= early)
    out(f"{'PASS' if verdicts[-1] else 'FAIL'} open files: at most {early} in the first half after warm-up, "
        f"{late} in the second")
    keep = keep_s or 3600
    bound = 2 * keep + max(10, keep / 2)
    judged = [s for s in samples if s.t_s >= bound]
    oldest = max((s.oldest_s for s in judged), default=0.0)
    span = samples[-1].t_s - after[0].t_s
    files = [s.cache_files + s.output_files for s in after]
    if span < 2 * bound:
        verdicts.append(False)
        out(f"FAIL temporary files: cannot judge, the soak ran {span:.0f} s after warm-up, needs >= {2 * bound:.0f} s "
            f"(2 x (2 x {keep} + {max(10, keep / 2):g}) s); lower --keep-files-s or send more requests")
    else:
        verdicts.append(oldest <= bound)
        out(f"{'PASS' if verdicts[-1] else 'FAIL'} temporary files: oldest file seen {oldest:.0f} s old in "
            f"{len(judged)} samples after {bound:.0f} s (limit {bound:.0f} s = 2 x {keep} + {max(10, keep / 2):g}); "
            f"files after warm-up {files[0]} -> max {max(files)} -> {files[-1]} at the end")
    out(f"note: folders {after[0].folders} after warm-up -> {samples[-1].folders} at the end "
        "(Gradio removes a cached file but not its per-file folder)")
    return verdicts


def versions(env: dict[str, str]) -> str:
    """python, gradio, torch versions and torch's thread count as the server's interpreter sees them."""
    code = ("import platform, torch, gradio; print(f'python {platform.python_version()}, gradio {gradio.__version__}, "
            "torch {torch.__version__}; torch threads {torch.get_num_threads()}')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip() or f"(versions unknown: {done.stderr.strip()[-200:]})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients of the load (default 20)")
    parser.add_argument("--requests", type=int, default=200, help="requests of the load, in all (default 200)")
    parser.add_argument("--soak", type=int, default=0, metavar="N", help="then a soak of N requests (default none)")
    parser.add_argument("--soak-clients", type=int, default=4, help="clients of the soak (default 4)")
    parser.add_argument("--keep-files-s", type=int, default=30, help="IMAGEGEN_KEEP_FILES_S of the soak (default 30)")
    parser.add_argument("--sample-every", type=int, default=0, help="soak requests between samples (default N/50)")
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of the soak not judged (default 0.1)")
    parser.add_argument("--time-limit", type=float, default=3600, help="seconds for the whole bench (default 3600)")
    parser.add_argument("--url", help="a running hub to load (then no soak: it samples a server it started)")
    parser.add_argument("--log", type=Path, default=REPO / "bench" / "results" / "load.log", help="log file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < args.clients or args.soak < 0 or args.soak_clients < 1:
        parser.error("--clients must be >= 1 and <= --requests; --soak >= 0; --soak-clients >= 1")
    if args.url and args.soak:
        parser.error("--soak samples a server this bench starts: leave out --url")
    if not 0 <= args.warmup < 1 or args.keep_files_s < 10:
        parser.error("--warmup must be in [0, 1) and --keep-files-s >= 10")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.time_limit
    with open(args.log, "w", encoding="utf-8") as log, tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        def out(text: str = "") -> None:
            print(text, flush=True)
            log.write(text + "\n")
            log.flush()

        out(f"load and soak of imagegen-hub, {time.strftime('%Y-%m-%d %H:%M:%S')}")
        out(f"command: {shlex.join([sys.executable, *sys.argv] if argv is None else ['bench/load.py', *argv])}")
        out(cpu_description())
        out(versions(server_env(Path(tmp), Path(tmp), None)))
        out(f"server: {args.url} (its own settings)" if args.url else "server: python app.py --port N --no-public "
            "on 127.0.0.1; IMAGEGEN_PUBLIC=0, IMAGEGEN_REQUESTS_PER_MINUTE=0, HF_HUB_OFFLINE=1")
        try:
            with served(Path(tmp) / "load-server", url=args.url) as server:
                ok = run_load(server, args.clients, args.requests, Path(tmp) / "load-server", deadline, out)
            if args.soak:
                with served(Path(tmp) / "soak-server", args.keep_files_s) as server:
                    every = args.sample_every or max(1, args.soak // 50)
                    ok = run_soak(server, args.soak_clients, args.soak, every, args.warmup, Path(tmp) / "soak-server",
                                  deadline, out) and ok
        except RuntimeError as err:
            out(f"bench failed: {err}")
            return 2
        out("PASS: every criterion" if ok else "FAIL: see the FAIL lines above")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
