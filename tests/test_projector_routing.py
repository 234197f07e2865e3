"""Issue 11, items 1 and 10: transparent uploads keep their strokes, each routed input shows
what the model makes of it, unreadable files get plain words, and the routing diagram keeps
its edges off the box labels."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from browser_support import RENDER_TIMEOUT_MS, assert_no_exception
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest
from tiny import TINY

from moa_core.analysis.routing import predictions, routing_views
from moa_core.checkpoint import list_runs, load_checkpoint
from moa_core.data import labelled_splits, load_dataset
from moa_core.image_input import ImageInputError, read_image, to_model_input
from moa_core.train.evaluate import evaluate
from moa_core.train.run import train_model
from moa_core.viz.routing import routing_diagram

ROOT = Path(__file__).resolve().parent.parent
ROUTING_PAGE = str(ROOT / "app_pages" / "routing.py")


def rgba_png(ink: tuple[int, int, int], hidden: tuple[int, int, int]) -> bytes:
    """A 64×64 RGBA PNG: an opaque vertical stroke of `ink` (columns 28–35, rows 8–55) with
    anti-aliased edges, on pixels of colour `hidden` at alpha 0."""
    image = Image.new("RGBA", (64, 64), (*hidden, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((27, 7, 36, 56), fill=(*ink, 110))  # a half-transparent rim
    draw.rectangle((28, 8, 35, 55), fill=(*ink, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("hidden", [(0, 0, 0), (255, 255, 255)], ids=["black0", "white0"])
@pytest.mark.parametrize("ink", [(255, 255, 255), (0, 0, 0)], ids=["white", "black"])
def test_strokes_on_transparency_become_light_strokes_on_dark(ink, hidden) -> None:
    image = read_image("drawing.png", rgba_png(ink, hidden))
    assert image.mode == "RGBA"
    x = to_model_input(image, channels=1, size=16, dark_background=True)
    # 64 → 16 pixels: the stroke covers columns 7–8 of rows 2–13, the rest is background.
    assert x[0, 2:14, 7:9].min() > 0.9
    assert x[0, :, :6].max() < 0.05 and x[0, :, 10:].max() < 0.05
    assert x[0, 15].max() < 0.05  # the bottom row, below the stroke


def test_on_a_light_background_set_black_ink_stays_dark_on_white() -> None:
    image = read_image("drawing.png", rgba_png((0, 0, 0), (0, 0, 0)))
    x = to_model_input(image, channels=3, size=16, dark_background=False)
    assert x.shape == (3, 16, 16)
    assert x[:, 2:14, 7:9].max() < 0.1 and x[:, :, :6].min() > 0.95


@pytest.mark.parametrize(
    "picture",
    [
        Image.new("RGBA", (64, 64), (255, 255, 255, 0)),  # nothing visible at all
        Image.new("RGB", (64, 64), (128, 128, 128)),  # one flat grey
    ],
    ids=["transparent", "flat"],
)
def test_an_input_without_contrast_is_one_line_not_a_diagram(picture: Image.Image) -> None:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    image = read_image("blank.png", buffer.getvalue())
    with pytest.raises(ImageInputError) as err:
        to_model_input(image, channels=1, size=16, dark_background=True, name="blank.png")
    message = str(err.value)
    assert message.startswith("blank.png") and "\n" not in message
    assert "one flat colour" in message


def test_an_unreadable_file_is_told_in_plain_words() -> None:
    with pytest.raises(ImageInputError) as err:
        read_image("notes.txt", b"these are notes, not pixels")
    message = str(err.value)
    assert message == "notes.txt is not an image this app can open: save it as PNG or JPEG."
    assert "Pillow" not in message


def test_a_classifiers_predictions_name_the_class_and_match_its_accuracy(
    routing_run_dir: Path,
) -> None:
    run = list_runs(routing_run_dir)[0]
    model = load_checkpoint(run.path).model
    _, test = labelled_splits("digits")
    found = predictions(model, test.x, test)  # the ~360 held-out digits
    names = test.names_by_label
    truth = [names[int(label)] for label in test.y]
    hits = np.mean([p.name == t for p, t in zip(found, truth, strict=True)])
    assert hits == pytest.approx(evaluate(model, test)["accuracy"], abs=1e-6)
    with torch.no_grad():
        probs = torch.softmax(model.eval()(test.x).class_logits, 1).max(1).values
    np.testing.assert_allclose([p.probability for p in found], probs.numpy(), atol=1e-6)
    assert re.fullmatch(r"predicted\sclass\s\d \(\d{1,3}\s%\)", found[0].text)
    assert f"({round(100 * found[0].probability)}\u00a0%)" in found[0].text


def test_a_mixtures_prediction_is_its_most_probable_cluster_counted_from_one() -> None:
    data = load_dataset("digits")
    model = train_model("moa_plus", "digits", TINY).model.eval()
    found = predictions(model, data.x[:40], data)
    with torch.no_grad():
        probs = model(data.x[:40]).gate_probs
    assert [p.name for p in found] == [str(int(k) + 1) for k in probs.argmax(1)]
    np.testing.assert_allclose([p.probability for p in found], probs.max(1).values, atol=1e-6)
    best = found[int(probs.max(1).values.argmax())]
    assert best.text == f"cluster\u00a0{best.name} ({round(100 * best.probability)}\u00a0%)"


def boxes_of(fig) -> list[tuple[float, float, float, float]]:
    return [
        (s.x0, s.x1, s.y0, s.y1) for s in fig.layout.shapes if s.type == "rect" and s.name == "box"
    ]


def crosses(segment: tuple[tuple[float, float], tuple[float, float]], box) -> bool:
    """Whether any of 400 points along the segment lies strictly inside the box."""
    (xa, ya), (xb, yb) = segment
    t = np.linspace(0.0, 1.0, 400)
    x, y = xa + (xb - xa) * t, ya + (yb - ya) * t
    x0, x1, y0, y1 = box
    eps = 1e-6
    return bool(np.any((x > x0 + eps) & (x < x1 - eps) & (y > y0 + eps) & (y < y1 - eps)))


@pytest.mark.parametrize("model_type", ["multipath_cc", "moa_plus"])
def test_no_edge_runs_through_a_box_or_its_label(model_type: str, routing_run_dir: Path) -> None:
    if model_type == "multipath_cc":
        model = load_checkpoint(list_runs(routing_run_dir)[0].path).model
    else:
        model = train_model("moa_plus", "digits", TINY).model
    (layers,) = routing_views(model, load_dataset("digits").x[:1])
    fig = routing_diagram(layers)
    boxes = boxes_of(fig)
    tensors = sum(len(v.input_strength) + len(v.output_strength) for v in layers)
    forward = sum(len(v.input_strength) for v in layers[1:])  # gray boxes between layers
    assert len(boxes) == tensors + forward  # 5 layers × (2 + 2) + 4 × 2 = 28 for the CC net
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len([t for t in lines if t.name == "gate"]) == sum(v.gates.size for v in layers)
    for trace in lines:
        points = list(zip(trace.x, trace.y, strict=True))
        for segment in zip(points, points[1:], strict=False):
            assert not any(crosses(segment, box) for box in boxes), (trace.name, segment)
    labels = [a for a in fig.layout.annotations if a.name == "box label"]
    assert len(labels) == len(boxes) - forward  # every tensor box is labelled inside itself
    for label in labels:
        assert any(x0 < label.x < x1 and y0 < label.y < y1 for x0, x1, y0, y1 in boxes)
        assert label.font.size >= 15


def test_the_diagram_is_big_enough_to_read_from_the_back_of_a_room() -> None:
    data = load_dataset("digits")
    model = train_model("moa_plus", "digits", TINY).model  # one gate to 3 experts
    (layers,) = routing_views(model, data.x[:1])
    fig = routing_diagram(layers)
    assert fig.layout.height >= 360 and fig.layout.font.size >= 16
    titles = [a for a in fig.layout.annotations if a.name == "layer name"]
    assert len(titles) == 1 and titles[0].font.size >= 16


def test_the_page_shows_each_inputs_prediction_beside_it(
    routing_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(routing_run_dir))
    at = AppTest.from_file(ROUTING_PAGE, default_timeout=120)
    at.query_params["run"] = list_runs(routing_run_dir)[0].run_id  # not the gallery's default
    at.run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown if "predicted\u00a0class" in m.value]
    assert len(shown) == 2 and all(re.search(r"\(\d{1,3}\s%\)", s) for s in shown)
    at.radio(key="route_1_source").set_value("Draw").run()
    assert not at.exception
    assert len([m for m in at.markdown if "predicted\u00a0class" in m.value]) == 1  # none drawn
    assert "undo or clear" in " ".join(c.value for c in at.caption)


@pytest.fixture(scope="module")
def app_url(routing_app_url: str) -> str:
    return routing_app_url


@pytest.mark.browser
@pytest.mark.slow
def test_canvas_toolbar_stays_off_the_choices_and_clear_pngs_route_or_say_why(page) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    page.goto("/routing")
    page.get_by_text("Gates over the dataset").wait_for(timeout=RENDER_TIMEOUT_MS)
    page.get_by_role("radiogroup", name="Input 2").get_by_text("Draw", exact=True).click()
    canvas = page.locator("canvas").last
    canvas.wait_for()
    canvas.hover()
    toolbar = page.locator(".dc-toolbar").last
    expect(toolbar).to_have_css("opacity", "1")
    choices = page.get_by_role("radiogroup", name="Input 2").bounding_box()
    assert toolbar.bounding_box()["y"] >= choices["y"] + choices["height"]

    page.get_by_role("radiogroup", name="Input 1").get_by_text("Upload", exact=True).click()
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]').first
    white = {"name": "white.png", "mimeType": "image/png", "buffer": rgba_png((255,) * 3, (0,) * 3)}
    uploader.set_input_files(files=[white])
    expect(page.locator('[data-testid="stImageCaption"]')).to_have_text(["white.png"])
    expect(page.get_by_text(re.compile(r"^predicted\sclass\s\S+ \(\d{1,3}\s%\)$"))).to_have_count(1)

    blank = io.BytesIO()
    Image.new("RGBA", (64, 64), (255, 255, 255, 0)).save(blank, format="PNG")
    uploader.set_input_files(
        files=[{"name": "blank.png", "mimeType": "image/png", "buffer": blank.getvalue()}]
    )
    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_have_count(1)
    assert error.inner_text().strip().startswith("blank.png is one flat colour")
    expect(page.locator('[data-testid="stImageCaption"]')).to_have_count(0)  # no diagram
    assert_no_exception(page)
