"""A class of N students trains at once on one server: the load test a teacher runs before
class (issue 12, item 6).

The real app runs under `streamlit run` (a temporary run registry and cache; the job manager
at `MOA_MAX_JOBS=2`, `MOA_BROWSER_TTL=5` and `MOA_FINISHED_TTL=5`, so a closed browser's
jobs, saved or not, leave the server soon; a finished job still on its page is kept). One
Debian Chromium drives N browser contexts (each its own cookies: a separate browser to the
app) concurrently through Playwright's asyncio API.
Every session opens the Train page, sets a small training on digits (MoA+, `Epochs` and
`Max samples` typed into their number inputs; about 5 s alone on a 2-core CPU), presses
Start, watches the page until the job's status line reads "finished", presses "Save as run"
(again if nothing shows within 30 s; `save_clicks_repeated` counts those), waits for
"Saved as run", and closes its context.

Definitions:
- **first live redraw**: seconds from the click on Start until the page's status line reads
  "running — epoch E/T done, step S" with S ≥ 1, i.e. the job has left the queue, trained its
  first batch, and the page's polling fragment has redrawn with it (the loss chart is drawn in
  the same fragment run). Queue time counts: that is what a student waits.
- **lost**: a job whose Start was pressed but that never read "finished": it timed out, it
  stopped or failed, or it vanished from the page (a status line was seen and later the page
  showed "press Start" again for 2 s in a row), or its session broke off before the end.
- **page exceptions**: at every check (every 0.5 s) the page's `stException` elements are
  counted; a session's number is the most seen at one check, summed over the sessions.

Also per job: `job_seconds` (Start to "finished" on the page, worst) and `train_seconds`
(the trainer's own time, from the "finished — N epochs in X s" line).

Memory is the server process's resident set (VmRSS of it and any child processes), sampled
every 0.25 s in a thread: at launch (healthy, no page yet), at the start (after one warm-up
visit of the Train page by a throwaway context, closed, and the server's CPU quiet again:
the libraries are imported and umap's warm-up compile is done), its peak, and at the end
(every session closed, then `ttl_wait_s` for the TTLs and the manager's sweeps). The
`ratio` is end / start memory (baseline: `rss_start_mb`). `--warm-job` makes the warm-up
visit train one tiny job too (the app itself now warms the first optimizer's imports at
start-up, torch._dynamo and sympy, ~150 MB, so it should change little).

CPU seconds over the class (warm to the last session closed, `class_s`): the server's
(`cpu_s_server`) and the browser side's (`cpu_s_browser`: Playwright's driver and Chromium,
which here share the server's cores, unlike a real class), and the machine's 1-minute load
average at the start and the end (`load_avg_1min`: other work on a shared machine shows).
`problems` names every session that did not end saved: its outcome, the alerts its page
showed last and when they last changed (seconds after Start: a frozen page shows), errors.

`python -m benchmarks.run classroom [--sessions 16] [--epochs 3] [--warm-job] [--log-dir
DIR]`; the server's log is kept (its path is in the JSON line as `server_log`), with a
screenshot of every session that did not end saved. The server inherits this process's
environment, so a Streamlit option can be tried without editing the config, e.g.
`STREAMLIT_RUNNER_POST_SCRIPT_GC=true` (Streamlit's default full `gc.collect()` after every
script and fragment run, about 0.3 s of held GIL each; `.streamlit/config.toml` turns it off
because eight polling pages then left the trainings no time: 0 of 8 jobs finished).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.browser import CHROMIUM, CHROMIUM_FLAGS, streamlit_process
from benchmarks.common import device_label, emit, progress
from benchmarks.process_stats import cpu_seconds, descendants, rss_kb, tree_rss_mb, wait_quiet

SESSIONS = 8
EPOCHS = 3
MAX_SAMPLES = 1000  # of digits' 1,797: about 5 s for 3 epochs alone on 2 CPU cores
BROWSER_TTL_S = 5
FINISHED_TTL_S = 5
TTL_WAIT_S = 20.0  # TTL + two sweeps of the job manager, with room
SAMPLE_SECONDS = 0.25
CHECK_SECONDS = 0.5
PAGE_TIMEOUT_MS = 180_000  # a page under load still answers within this
SETTLE_MAX_S = 120.0  # at most this long for the server to go quiet after the warm-up visit
MEMORY_LIMIT_MB = 150.0  # acceptance: end - start memory
VANISHED_S = 2.0
SAVE_WAIT_S = 30.0  # a click on "Save as run" that shows nothing in this long is repeated
SAVE_CLICKS = 3

# The page's state, read in one round trip: the alert texts (status lines, "press Start",
# "Saved as run") and the exceptions shown.
READ_PAGE = """() => ({
  alerts: Array.from(document.querySelectorAll('[data-testid="stAlert"]'))
    .map(e => e.innerText.trim()),
  exceptions: Array.from(document.querySelectorAll('[data-testid="stException"]'))
    .map(e => e.innerText.trim().slice(0, 300)),
})"""
RUNNING = re.compile(r"^(?:running|paused) — epoch (\d+)/(\d+) done, step (\d+)")
TRAINED = re.compile(r"finished — \d+ epochs in ([\d.]+) s")  # the job's own training time
ENDED_BADLY = re.compile(r"^(?:stopped|failed) — ")
IDLE = "Choose the settings above and press"


# ---------------------------------------------------------------------------------------
# Memory of the server process


class MemorySampler(threading.Thread):
    """Samples the server's resident memory every SAMPLE_SECONDS until stopped; also the CPU
    time of this benchmark's own other child processes (Playwright's driver and Chromium,
    which share the machine's cores with the server), per process at its last sighting."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="classroom-rss", daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (monotonic seconds, MB)
        self.browser_cpu: dict[int, float] = {}  # pid → CPU seconds
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            server = descendants(self.pid)
            mb = sum(rss_kb(each) for each in server) / 1024
            others = descendants(os.getpid()) - server - {os.getpid()}
            with self._lock:
                self.samples.append((time.monotonic(), mb))
                for each in others:
                    self.browser_cpu[each] = max(self.browser_cpu.get(each, 0.0), cpu_seconds(each))
            self._halt.wait(SAMPLE_SECONDS)

    def browser_cpu_seconds(self) -> float:
        with self._lock:
            return sum(self.browser_cpu.values())

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def now(self, window: float = 1.0) -> float:
        """Median of the samples of the last `window` seconds (a fresh sample if none)."""
        with self._lock:
            cut = time.monotonic() - window
            recent = [mb for t, mb in self.samples if t >= cut]
        return statistics.median(recent) if recent else tree_rss_mb(self.pid)

    def peak(self, since: float = 0.0) -> float:
        with self._lock:
            return max((mb for t, mb in self.samples if t >= since), default=0.0)


# ---------------------------------------------------------------------------------------
# One student


@dataclass
class Session:
    index: int
    started: bool = False
    finished: bool = False
    saved: bool = False
    first_redraw_s: float | None = None
    job_seconds: float | None = None  # Start → "finished" on the page
    train_seconds: float | None = None  # the trainer's own time, from the finished line
    exceptions: int = 0  # the most seen at one check
    exception_checks: int = 0
    save_clicks: int = 0
    exception_texts: list[str] = field(default_factory=list)
    outcome: str = "not started"
    last_status: str = ""  # the alerts the page showed last, and when they last changed
    last_change_s: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def lost(self) -> bool:
        return self.started and not self.finished


async def check(page, session: Session) -> dict:
    """Read the page's alerts and count its exceptions (one check)."""
    state = await page.evaluate(READ_PAGE)
    shown = state["exceptions"]
    if shown:
        session.exception_checks += 1
        session.exceptions = max(session.exceptions, len(shown))
        for text in shown:
            if text not in session.exception_texts:
                session.exception_texts.append(text)
    return state


async def number_input(page, label: str, value: int) -> None:
    """Type `value` into the number input labelled `label` and wait until it holds it."""
    from playwright.async_api import expect

    box = page.locator(f'input[aria-label="{label}"]')
    await box.fill(str(value))
    await box.press("Enter")
    await expect(box).to_have_value(str(value), timeout=PAGE_TIMEOUT_MS)


async def open_train_page(page, url: str) -> None:
    await page.goto(url + "/train")
    await page.get_by_role("heading", name="Train").first.wait_for()
    await page.get_by_role("button", name="Start").wait_for()


async def watch_job(page, session: Session, clicked: float, timeout: float) -> None:
    """Check the page every CHECK_SECONDS until the job reads finished (or is lost)."""
    seen_status, idle_since, shown = False, None, None
    while time.perf_counter() - clicked < timeout:
        try:
            alerts = (await check(page, session))["alerts"]
        except Exception as err:  # a check that fails is retried, not fatal
            session.errors.append(f"check: {type(err).__name__}: {str(err)[:200]}")
            await asyncio.sleep(CHECK_SECONDS)
            continue
        now = time.perf_counter()
        if alerts != shown:  # the page redrew with something new
            shown, session.last_change_s = alerts, round(now - clicked, 1)
            session.last_status = " / ".join(alerts)[:200]
        for text in alerts:
            running = RUNNING.match(text)
            if running or text.startswith(("waiting", "finished — ")):
                seen_status = True
            if running and int(running.group(3)) >= 1 and session.first_redraw_s is None:
                session.first_redraw_s = round(now - clicked, 2)
            if text.startswith("finished — "):
                session.finished = True
                session.job_seconds = round(now - clicked, 2)
                trained = TRAINED.search(text)
                session.train_seconds = float(trained.group(1)) if trained else None
                if session.first_redraw_s is None:  # it finished between two checks
                    session.first_redraw_s = session.job_seconds
                return
            if ENDED_BADLY.match(text):
                session.outcome = f"ended: {text[:200]}"
                return
        if seen_status and any(text.startswith(IDLE) for text in alerts):
            idle_since = idle_since or now
            if now - idle_since >= VANISHED_S:
                session.outcome = "vanished from the page"
                return
        else:
            idle_since = None
        await asyncio.sleep(CHECK_SECONDS)
    session.outcome = f"not finished within {timeout:.0f} s"


async def save(page, session: Session) -> None:
    """Press "Save as run" and check until the page says "Saved as run"; press it again
    (at most SAVE_CLICKS in all) when nothing happened within SAVE_WAIT_S."""
    button = page.get_by_role("button", name="Save as run")
    while session.save_clicks < SAVE_CLICKS:
        try:
            await button.click(timeout=SAVE_WAIT_S * 1000)
        except Exception:
            alerts = (await check(page, session))["alerts"]
            if any(text.startswith(IDLE) for text in alerts):
                session.outcome = "dropped from the page before it was saved"
                return
            raise
        session.save_clicks += 1
        clicked = time.perf_counter()
        while time.perf_counter() - clicked < SAVE_WAIT_S:
            alerts = (await check(page, session))["alerts"]
            if any(text.startswith("Saved as run") for text in alerts):
                session.saved, session.outcome = True, "saved"
                return
            failed = [text for text in alerts if text.startswith("Could not save")]
            if failed:
                session.outcome = failed[0][:200]
                return
            await asyncio.sleep(CHECK_SECONDS)
    session.outcome = f"no 'Saved as run' after {session.save_clicks} clicks on Save as run"


async def student(
    browser, url: str, session: Session, settings: dict, timeout: float, shots: Path | None
) -> None:
    """One browser context: open Train, set a small training, Start, watch, save, close.
    A failing step is recorded and the session still closes its context."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    step = "open"
    try:
        await open_train_page(page, url)
        await check(page, session)
        step = "settings"
        for label, value in settings.items():
            await number_input(page, label, value)
        await check(page, session)
        step = "start"
        await page.get_by_role("button", name="Start").click()
        clicked = time.perf_counter()
        session.started, session.outcome = True, "started"
        step = "watch"
        await watch_job(page, session, clicked, timeout)
        if session.finished:
            session.outcome = "finished"
            step = "save"
            await save(page, session)
    except Exception as err:  # recorded; the other sessions carry on
        session.errors.append(f"{step}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        if not session.started or session.finished:
            session.outcome = f"broke off at {step}"
        else:
            session.outcome = f"lost at {step}"
    finally:
        if session.outcome != "saved" and shots is not None:
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(shots / f"session-{session.index}.png"))
        await context.close()
    progress(
        f"classroom: session {session.index} {session.outcome}"
        f" (first redraw {session.first_redraw_s} s, job {session.job_seconds} s)"
    )


async def warm_up(browser, url: str, job: bool) -> None:
    """One throwaway visit of the Train page: the server imports its libraries. With `job`,
    it also trains one tiny job to the end (the first job of a server process imports
    torch._dynamo, through Adam, and sympy: seconds, and about 150 MB)."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        await open_train_page(page, url)
        await page.get_by_text(IDLE).first.wait_for()
        if job:
            for label, value in {"Epochs": 1, "Max samples": 100}.items():
                await number_input(page, label, value)
            await page.get_by_role("button", name="Start").click()
            await page.get_by_text("finished — ").first.wait_for()
    finally:
        await context.close()


async def drive(
    url: str,
    sessions: list[Session],
    settings: dict,
    timeout: float,
    on_warm,
    shots: Path,
    warm_job: bool,
) -> None:
    """Warm up, call `on_warm()` (the start memory), then run every student at once."""
    from playwright.async_api import async_playwright

    async with async_playwright() as play:
        browser = await play.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            progress("classroom: warm-up visit of the Train page")
            await warm_up(browser, url, warm_job)
            await asyncio.to_thread(on_warm)
            progress(f"classroom: {len(sessions)} sessions start")
            await asyncio.gather(
                *(student(browser, url, s, settings, timeout, shots) for s in sessions),
                return_exceptions=True,
            )
        finally:
            await browser.close()


# ---------------------------------------------------------------------------------------


def measure(
    sessions: int = SESSIONS,
    epochs: int = EPOCHS,
    max_samples: int = MAX_SAMPLES,
    ttl_wait_s: float = TTL_WAIT_S,
    browser_ttl_s: float = BROWSER_TTL_S,
    finished_ttl_s: float = FINISHED_TTL_S,
    log_dir: Path | None = None,
    job_timeout_s: float | None = None,
    settle_max_s: float = SETTLE_MAX_S,
    warm_job: bool = False,
    server_warm_up: bool = True,
) -> dict:
    """Run the classroom and emit its one JSON line (also returned). `server_warm_up=False`
    starts the server without its background UMAP compile (`MOA_WARM_UP=0`): for a check of
    the counts, not for a measurement."""
    start = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="classroom-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    timeout = job_timeout_s or 120.0 + 60.0 * sessions  # the last in the queue waits for all
    settings = {"Epochs": epochs, "Max samples": max_samples}
    students = [Session(i + 1) for i in range(sessions)]
    memory: dict[str, float] = {}
    marks: dict[str, float] = {}
    alive, server_error = False, ""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = root / "runs"
        runs.mkdir()
        env = {
            "MOA_CACHE_DIR": str(root / "cache"),
            "MOA_MAX_JOBS": "2",
            "MOA_BROWSER_TTL": f"{browser_ttl_s:g}",
            "MOA_FINISHED_TTL": f"{finished_ttl_s:g}",
            **({} if server_warm_up else {"MOA_WARM_UP": "0"}),
        }
        progress(f"classroom: starting the server (log {log_dir / 'server.log'})")
        try:
            with streamlit_process(runs, log_dir, env) as (url, process):
                sampler = MemorySampler(process.pid)
                sampler.start()
                time.sleep(1.5)
                memory["rss_launch_mb"] = sampler.now()

                def on_warm() -> None:
                    marks["settle_s"] = wait_quiet(process.pid, settle_max_s)
                    memory["rss_start_mb"] = sampler.now()
                    marks["start"] = time.monotonic()
                    marks["server_cpu"] = cpu_seconds(process.pid)
                    marks["browser_cpu"] = sampler.browser_cpu_seconds()
                    progress(
                        f"classroom: warm after {marks['settle_s']} s quiet-wait, "
                        f"{memory['rss_start_mb']:.0f} MB"
                    )

                try:
                    asyncio.run(drive(url, students, settings, timeout, on_warm, log_dir, warm_job))
                except Exception as err:  # the JSON line still comes out
                    progress(f"classroom: the browser side failed: {type(err).__name__}: {err}")
                if "start" in marks:
                    marks["class_s"] = time.monotonic() - marks["start"]
                    marks["server_cpu"] = cpu_seconds(process.pid) - marks["server_cpu"]
                    marks["browser_cpu"] = sampler.browser_cpu_seconds() - marks["browser_cpu"]
                progress(
                    f"classroom: every session closed; waiting {ttl_wait_s:.0f} s for the TTLs"
                )
                time.sleep(ttl_wait_s)
                memory["rss_end_mb"] = sampler.now()
                memory["rss_peak_mb"] = sampler.peak()
                sampler.stop()
                alive = process.poll() is None
        except Exception as err:  # the server did not come up or died: still one JSON line
            progress(f"classroom: the server failed: {type(err).__name__}: {err}")
            server_error = f"{type(err).__name__}: {str(err)[-500:]}"
        saved_on_disk = len(list(runs.glob("*.safetensors")))
    log_file = log_dir / "server.log"
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    redraws = sorted(s.first_redraw_s for s in students if s.first_redraw_s is not None)
    start_mb, end_mb = memory.get("rss_start_mb", 0.0), memory.get("rss_end_mb", 0.0)
    record = {
        "name": "classroom",
        "device": device_label(),
        "seconds": round(time.perf_counter() - start, 1),
        "baseline": "rss_start_mb (after one warm-up visit of the Train page)",
        "ratio": round(end_mb / start_mb, 3) if start_mb and end_mb else None,
        "sessions": sessions,
        "settings": {"dataset": "digits", "model": "moa_plus", **settings},
        "jobs_started": sum(s.started for s in students),
        "jobs_finished": sum(s.finished for s in students),
        "jobs_saved": sum(s.saved for s in students),
        "jobs_lost": sum(s.lost for s in students),
        "saved_runs_on_disk": saved_on_disk,
        "page_exceptions": sum(s.exceptions for s in students),
        "page_exception_checks": sum(s.exception_checks for s in students),  # checks showing any
        "save_clicks_repeated": sum(max(0, s.save_clicks - 1) for s in students),
        "first_redraw_median_s": round(statistics.median(redraws), 2) if redraws else None,
        "first_redraw_worst_s": redraws[-1] if redraws else None,
        "first_redraw_s": redraws,
        "job_seconds_worst": max(
            (s.job_seconds for s in students if s.job_seconds is not None), default=None
        ),
        "train_seconds": sorted(s.train_seconds for s in students if s.train_seconds),
        **{key: round(value, 1) for key, value in memory.items()},
        "rss_growth_mb": round(end_mb - start_mb, 1) if start_mb and end_mb else None,
        "within_limit": bool(start_mb and end_mb) and end_mb - start_mb <= MEMORY_LIMIT_MB,
        "ttl_wait_s": ttl_wait_s,
        "warm_job": warm_job,
        "settle_s": marks.get("settle_s"),
        "class_s": round(marks.get("class_s", 0.0), 1),
        "cpu_s_server": round(marks.get("server_cpu", 0.0), 1),
        "cpu_s_browser": round(marks.get("browser_cpu", 0.0), 1),
        "server_alive": alive,
        "server_error": server_error,
        "load_avg_1min": [load_start, round(os.getloadavg()[0], 2)],  # machine shared?
        "server_log": str(log_dir / "server.log"),
        "server_log_tracebacks": log.count("Traceback"),
        "problems": {
            s.index: {
                "outcome": s.outcome,
                "last_status": s.last_status,
                "last_change_s": s.last_change_s,
                "errors": s.errors[:3],
                "exceptions": s.exception_texts,
            }
            for s in students
            if s.outcome != "saved" or s.errors or s.exception_texts
        },
    }
    return emit(record)


def run() -> dict:
    return measure()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run classroom", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="browsers at once")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs per job")
    parser.add_argument("--max-samples", type=int, default=MAX_SAMPLES, help="digits per job")
    parser.add_argument("--ttl-wait", type=float, default=TTL_WAIT_S, help="seconds before end")
    parser.add_argument("--browser-ttl", type=float, default=BROWSER_TTL_S)
    parser.add_argument("--finished-ttl", type=float, default=FINISHED_TTL_S)
    parser.add_argument("--log-dir", type=Path, help="keep server.log here (default: a temp dir)")
    parser.add_argument(
        "--warm-job",
        action="store_true",
        help="the warm-up visit also trains one tiny job (first-job imports out of the figures)",
    )
    args = parser.parse_args(argv)
    return measure(
        sessions=args.sessions,
        epochs=args.epochs,
        max_samples=args.max_samples,
        ttl_wait_s=args.ttl_wait,
        browser_ttl_s=args.browser_ttl,
        finished_ttl_s=args.finished_ttl,
        log_dir=args.log_dir,
        warm_job=args.warm_job,
    )


if __name__ == "__main__":
    main()
