"""`moa export RUN --html FILE`: one self-contained page per run, sections chosen by what the
run can show, nothing fetched from a network, errors in one line (exit 2)."""

from __future__ import annotations

import contextlib
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs
from tiny import TINY, TINY_ROUTING

from moa_core.checkpoint import save_checkpoint, save_run
from moa_core.cli import main
from moa_core.export import resolve_run
from moa_core.gallery import gallery_runs
from moa_core.train.run import train_model

MAX_BYTES = 6 * 2**20
SECTIONS = {  # run → the section titles its page must hold, beyond "About this run" and "Scores"
    "moa": {"Latent map", "Routing", "What each expert generates"},
    "routing": {"Latent map", "Routing"},
    "points": {"Cluster densities over the plane"},
}
FIGURE_SECTIONS = set().union(*SECTIONS.values())
FIGURES = {"moa": 4, "routing": 3, "points": 2}  # plotly figures: usage, map, diagrams, contours
PICTURES = {"moa": 3, "routing": 2, "points": 0}  # <img>s: routed inputs, the samples grid
RECIPES = {
    "moa": ("moa", "digits", TINY),
    "routing": (
        "multipath_cc",
        "digits",
        {**TINY_ROUTING, "epochs": 1, "max_samples": 200, "batch_size": 50, "device": "cpu"},
    ),
    "points": ("neural_em", "blobs", {"input_kind": "points", "epochs": 3, "device": "cpu"}),
}


def _run(argv: list[str]) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def runs_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs))
    return runs


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny MoA and multipath_cc on digits and a neural EM on the 2-D blobs, each a file."""
    directory = tmp_path_factory.mktemp("export_runs")
    paths = {}
    for name, (model, dataset, overrides) in RECIPES.items():
        run = train_model(model, dataset, overrides)
        paths[name] = directory / f"{name}.safetensors"
        save_checkpoint(paths[name], run.model, run.config, run.checkpoint_meta())
    return paths


@pytest.fixture(scope="module")
def exported(checkpoints: dict[str, Path]) -> dict[str, tuple[dict, str]]:
    """Each checkpoint through `moa export`: (its JSON line, the page it wrote)."""
    pages = {}
    for name, path in checkpoints.items():
        html = path.with_suffix(".html")
        code, out, err = _run(["export", str(path), "--html", str(html), "--device", "cpu"])
        assert (code, err) == (0, ""), err
        pages[name] = (json.loads(out), html.read_text(encoding="utf-8"))
    return pages


def _titles(page: str) -> set[str]:
    return {part.split("</h2>", 1)[0] for part in page.split("<h2>")[1:]}


@pytest.mark.slow  # the first UMAP in a process compiles numba's kernels (~15 s)
@pytest.mark.parametrize("name", list(RECIPES))
def test_page_holds_the_sections_its_run_can_show(
    name: str, exported: dict, checkpoints: dict
) -> None:
    line, page = exported[name]
    assert set(line) == {"run", "html", "bytes", "seconds"}
    assert line["run"] == str(checkpoints[name])
    assert line["bytes"] == Path(line["html"]).stat().st_size < MAX_BYTES
    titles = _titles(page)
    assert {"About this run", "Scores", "Sources"} <= titles
    assert titles & FIGURE_SECTIONS == SECTIONS[name]
    assert page.count('class="plotly-graph-div"') == FIGURES[name]
    assert page.count(get_plotlyjs()) == 1  # inlined once, however many figures
    model, dataset, _ = RECIPES[name]
    assert f"<h1>{model} on {dataset}</h1>" in page


@pytest.mark.slow
def test_scores_on_the_page_are_what_moa_eval_reports(exported: dict, checkpoints: dict) -> None:
    for name, path in checkpoints.items():
        code, out, _ = _run(["eval", str(path), "--device", "cpu"])
        scores = json.loads(out)
        page = exported[name][1]
        if "accuracy" in scores:
            assert f'<div class="value">{scores["accuracy"]:.3f}</div>' in page
        else:
            for key in ("acc", "nmi", "ari"):
                assert f'<div class="value">{scores[key]:.3f}</div>' in page


@pytest.mark.slow
def test_latent_map_carries_one_hover_image_per_point(exported: dict) -> None:
    page = exported["moa"][1].replace(get_plotlyjs(), "")  # it holds a PNG of its own
    assert "Each point is one of all 200 training samples" in page
    # Thumbnails ride in the points' customdata (JSON), the hover panel shows them: every
    # other PNG is a point's or one of the pictures.
    assert page.count("base64,iVBORw0KGgo") == 200 + PICTURES["moa"]
    assert 'id="moa-hover-img"' in page


class _Fetches(HTMLParser):
    """Every place an HTML page could make the browser fetch: URL attributes, <link>s,
    scripts with a src, and @import / url(...) in inline CSS."""

    URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.links = 0
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += tag == "link"
        self.urls += [v or "" for k, v in attrs if k in self.URL_ATTRIBUTES]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += ["@import"] * data.count("@import")
            self.urls += [part.split(")", 1)[0] for part in data.split("url(")[1:]]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_page_asks_no_server_for_anything(name: str, exported: dict) -> None:
    fetches = _Fetches()
    fetches.feed(exported[name][1])
    assert fetches.links == 0
    assert [u for u in fetches.urls if not u.startswith(("data:", "#"))] == []
    assert sum(u.startswith("data:image/png;base64,") for u in fetches.urls) == PICTURES[name]


def test_a_saved_run_is_found_by_its_id(runs_dir: Path) -> None:
    run = train_model("neural_em", "blobs", {"epochs": 1, "max_samples": 100, "device": "cpu"})
    path = save_run(run.model, run.config, run.checkpoint_meta())
    assert resolve_run(path.stem) == (path.stem, path)
    assert resolve_run(str(path)) == (str(path), path)  # a file is a run too


def test_every_gallery_run_is_found_by_its_id() -> None:
    if not gallery_runs():
        pytest.skip("the gallery is not built yet (make gallery)")
    for run in gallery_runs():
        assert resolve_run(run.run_id) == (run.run_id, run.path)


def _one_line(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2 and out == ""
    assert err.startswith("moa: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize(
    ("run", "needles"),
    [
        ("no-such-run", ["unknown run 'no-such-run'", "moa list", "gallery/NAME"]),
        ("gallery/no_such_recipe", ["unknown gallery run 'gallery/no_such_recipe'"]),
    ],
)
def test_unknown_run_is_one_line(run: str, needles: list[str], tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    _one_line(*_run(["export", run, "--html", str(html)]), *needles)
    assert not html.exists()


def test_bad_checkpoint_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "notes.safetensors"
    fake.write_text("not a checkpoint")
    html = tmp_path / "page.html"
    _one_line(*_run(["export", str(fake), "--html", str(html)]), "notes.safetensors")
    assert not html.exists()


def test_unwritable_output_is_one_line_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # Checked before the run is even looked up: an unknown run would be another line.
    code, out, err = _run(["export", "no-such-run", "--html", str(blocker / "page.html")])
    _one_line(code, out, err, "cannot create the folder for --html")
    _one_line(*_run(["export", "no-such-run", "--html", str(tmp_path)]), "is a folder", ".html")


@pytest.mark.browser
@pytest.mark.slow
def test_pages_render_offline_in_chromium(browser, exported: dict) -> None:
    """Network off and every non-file request aborted (and counted): every figure draws, every
    picture decodes, and hovering a point of the latent map shows its image."""
    from playwright.sync_api import expect

    for name, (line, _) in exported.items():
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_offline(True)
        fetched: list[str] = []

        def local_only(route, fetched: list[str] = fetched) -> None:
            if route.request.url.startswith(("file:", "data:")):
                route.continue_()
            else:
                fetched.append(route.request.url)
                route.abort()

        context.route("**/*", local_only)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.goto(Path(line["html"]).resolve().as_uri())
        expect(page.locator(".js-plotly-plot:has(.main-svg)")).to_have_count(FIGURES[name])
        assert page.locator(".plotly-graph-div").count() == FIGURES[name]
        widths = page.eval_on_selector_all("img[src]", "all => all.map(i => i.naturalWidth)")
        assert len(widths) == PICTURES[name] and all(w > 0 for w in widths)
        if name != "points":  # its map is the density panels: no hover images
            point = page.locator(".moa-row .scatterlayer .point").first
            point.scroll_into_view_if_needed()
            box = point.bounding_box()
            page.mouse.move(box["x"] + 3, box["y"] + 3, steps=5)
            page.wait_for_function("document.querySelector('#moa-hover-img').naturalWidth > 0")
            expect(page.locator("#moa-hover-caption")).to_contain_text("#")
        assert (fetched, errors) == ([], [])
        context.close()
