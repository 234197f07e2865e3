"""Seconds from a click on a Start-page lesson card to the first figure of the page it opens
on its gallery run (issue 13: ≤ 3 s on a 2-core CPU once warm), in Debian's Chromium against
the real app with an empty run registry, as on a fresh clone.

Once warm: every card's page is opened once first (imports, numba's first compile, the
per-run caches, the browser's HTTP cache). Then, `--repeats` times, every card is clicked in
one tab, going back to Start through the sidebar between cards (a teacher going through the
lessons: `seconds`), and every card is clicked on a Start page in a new tab that is a new
browser to the app (a student opening the lab: `new_tab`, which also pays for parsing
Plotly's bundle in the fresh tab). Each click waits until the server is quiet (under a tenth
of a core over 3 s, at most 30 s), so what the page before left running, such as Neuron
maximization's synthesis, is not charged to the next card. The machine's load average
before and after is recorded: other work on the two cores slows the browser most.

First figure: the first Plotly chart, image or latent scatter in the target page's main area
once the Start page is gone; Train and Your data draw none before the user acts, so theirs is
the control that starts it (the Start button, the upload box). The baseline is the click to
the target page's title. One JSON line per card; cards whose gallery run is not bundled are
skipped with their one line.

`python -m benchmarks.run lesson_cards [--repeats N] [--shots DIR]` (`--shots` also saves the
Start page at 1400×1000, 1280×720 and 1400 wide as tall as the page).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.browser import CHROMIUM, CHROMIUM_FLAGS, streamlit_process
from benchmarks.common import device_label, emit, progress
from benchmarks.process_stats import wait_quiet
from moa_core.gallery import gallery_runs
from moa_core.start_lessons import CARDS, LessonCard

QUIET_MAX_SECONDS = 30
TIMEOUT_MS = 300_000
LIMIT_SECONDS = 3.0
VIEWPORTS = ((1400, 1000), (1280, 720))
START_TITLE = "Mixture Lab"
MAIN = '[data-testid="stMain"] '
FIGURE = ", ".join(
    MAIN + selector
    for selector in (
        ".js-plotly-plot",
        '[data-testid="stImage"] img',
        'iframe[title="Latent space scatter"]',
    )
)
READY = {  # pages with no figure before the user acts: the control that starts one
    "/train": MAIN + 'button:has-text("Start")',
    "/your_data": MAIN + '[data-testid="stFileUploader"]',
    "/gated_regression": MAIN + 'button:has-text("Start")',
}


def card_button(page, card: LessonCard):
    return page.locator(f".st-key-{card.key} button")


def new_start_page(context, url: str):
    """The Start page in a new tab that is a new browser to the app (cookies cleared)."""
    context.clear_cookies()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + "/")
    return page


def back_to_start(page) -> None:
    """Back to the Start page through the sidebar, as a teacher goes to the next lesson."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Start").click()
    page.get_by_role("heading", name=START_TITLE, exact=True).wait_for()


def click_card(page, url: str, card: LessonCard) -> dict:
    """Click `card` on the open Start page: seconds to the target's title and to its first
    figure, the URL it landed on, and the exceptions on the page."""
    button = card_button(page, card)
    button.wait_for()
    page.wait_for_load_state("networkidle")
    start = time.perf_counter()
    button.click()
    page.get_by_role("heading", name=card.page_title, exact=True).first.wait_for()
    title = time.perf_counter() - start
    page.get_by_role("heading", name=START_TITLE, exact=True).wait_for(state="detached")
    page.locator(READY.get(card.url_path, FIGURE)).first.wait_for(state="visible")
    figure = time.perf_counter() - start
    return {
        "title": round(title, 2),
        "first_figure": round(figure, 2),
        "url": page.url.removeprefix(url),
        "exceptions": page.locator('[data-testid="stException"]').count(),
    }


def start_page_shots(browser, url: str, folder: Path) -> None:
    """The Start page at each viewport, and once whole (Streamlit scrolls its main area, not
    the document, so a full-page shot needs a window as tall as the page)."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [*VIEWPORTS, (VIEWPORTS[0][0], 0)]
    for width, height in sizes:
        context = browser.new_context(viewport={"width": width, "height": height or 1000})
        page = context.new_page()
        page.goto(url + "/")
        card_button(page, CARDS[-1]).wait_for()
        page.wait_for_load_state("networkidle")
        if not height:  # as tall as the page
            tall = page.locator('[data-testid="stMain"]').evaluate("main => main.scrollHeight")
            page.set_viewport_size({"width": width, "height": tall})
        time.sleep(1)  # the thumbnails' last paint
        page.screenshot(path=str(folder / f"start-{width}x{height or 'full'}.png"))
        context.close()


def spread(values: list[float]) -> dict:
    return {
        "mean": round(statistics.fmean(values), 2),
        "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
        "runs": values,
    }


def card_record(card: LessonCard, same_tab: list[dict], new_tab: list[dict]) -> dict:
    figures = [timing["first_figure"] for timing in same_tab]
    titles = [timing["title"] for timing in same_tab]
    same = spread(figures)
    return {
        "name": "lesson_cards",
        "device": device_label(),
        "card": card.question,
        "page": card.page_title,
        "run": card.run,
        "seconds": same["mean"],
        "std": same["std"],
        "runs": figures,
        "worst": max(figures),
        "within_limit": max(figures) <= LIMIT_SECONDS,
        "new_tab": spread([timing["first_figure"] for timing in new_tab]),
        "baseline": "seconds from the click to the page's title (same tab)",
        "title_seconds": titles,
        "ratio": round(statistics.fmean(figures) / max(statistics.fmean(titles), 1e-3), 2),
        "url": same_tab[-1]["url"],
        "exceptions": sum(timing["exceptions"] for timing in same_tab + new_tab),
    }


def measure(repeats: int = 3, shots: Path | None = None) -> list[dict]:
    """Warm every page once, then `repeats` rounds of: every card clicked in one tab,
    returning to Start through the sidebar (a teacher going through the lessons), and every
    card clicked on a Start page in a new tab (a student opening the lab)."""
    from playwright.sync_api import sync_playwright

    bundled = {run.path.stem for run in gallery_runs()}
    cards = [card for card in CARDS if not card.missing(bundled)]
    for card in CARDS:
        if card not in cards:
            emit({"name": "lesson_cards", "card": card.question, "skipped": card.missing(bundled)})
    same_tab: dict[LessonCard, list[dict]] = {card: [] for card in cards}
    new_tab: dict[LessonCard, list[dict]] = {card: [] for card in cards}
    load = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "runs").mkdir()
        server = streamlit_process(root / "runs", root, {"MOA_CACHE_DIR": str(root / "cache")})
        with server as (url, process), sync_playwright() as play:
            browser = play.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            width, height = VIEWPORTS[0]
            context = browser.new_context(viewport={"width": width, "height": height})

            def timed(label: str, page, card: LessonCard) -> dict:
                quiet = wait_quiet(process.pid, QUIET_MAX_SECONDS)
                progress(f"lesson_cards: {label} {card.question} (quiet after {quiet} s)")
                return click_card(page, url, card)

            for card in cards:  # warm-up: every page once
                page = new_start_page(context, url)
                timed("warm-up", page, card)
                page.close()
            for round_ in range(1, repeats + 1):
                page = new_start_page(context, url)
                for card in cards:
                    same_tab[card].append(timed(f"round {round_}, same tab:", page, card))
                    back_to_start(page)
                page.close()
                for card in cards:
                    page = new_start_page(context, url)
                    new_tab[card].append(timed(f"round {round_}, new tab:", page, card))
                    page.close()
            context.close()
            if shots is not None:
                start_page_shots(browser, url, shots)
            browser.close()
    load.append(round(os.getloadavg()[0], 2))
    return [
        emit({**card_record(card, same_tab[card], new_tab[card]), "load_avg_1min": load})
        for card in cards
    ]


def run() -> list[dict]:
    return measure()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed clicks per card")
    parser.add_argument("--shots", type=Path, help="save Start page screenshots into this folder")
    options = parser.parse_args(argv)
    measure(options.repeats, options.shots)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
