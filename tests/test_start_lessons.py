"""The Start page's lesson cards: each opens a page of the app's navigation on a gallery run
of the contract, and the page draws every card (disabled with one line when its run is
missing) without training or loading anything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_support import PAGES
from streamlit.testing.v1 import AppTest

from moa_core import gallery
from moa_core.start_lessons import CARDS, LessonCard

ROOT = Path(__file__).resolve().parent.parent
GALLERY_NAMES = {  # the gallery's names, as the gallery contract lists them
    "moa_digits",
    "moa_plus_digits",
    "neural_em_digits",
    "neural_em_2d_normalized",
    "neural_em_2d_plain",
    "multipath_cc_reg",
    "multipath_cc_noreg",
    "moe_vae_digits",
    "vade_digits",
    "dmvae_digits",
    "dvmoe_spiral",
    "deep_moe_spiral",
}


def navigation() -> dict[str, str]:
    """app.py's pages: script path → title."""
    source = (ROOT / "app.py").read_text()
    return dict(re.findall(r'st\.Page\(\s*"([^"]+)",\s*title="([^"]+)"', source))


def test_every_card_opens_a_page_of_the_navigation_under_its_title() -> None:
    pages = navigation()
    assert len(pages) == len(PAGES)  # the pattern found every page
    for card in CARDS:
        assert pages.get(card.page) == card.page_title, card.question
        assert PAGES[card.url_path] == card.page_title  # the address the browser shows


def test_every_run_and_thumbnail_is_a_gallery_name() -> None:
    for card in CARDS:
        assert set(card.runs()) <= GALLERY_NAMES, card.question
        assert card.thumbnail == "" or card.thumbnail in GALLERY_NAMES, card.question
        if card.run:
            assert card.query_params()["run"] == f"gallery/{card.run}"
        else:
            assert "run" not in card.query_params()


@pytest.mark.parametrize(
    ("question", "url_path", "run"),
    [  # the issue's lessons and where they are answered
        ("Why do experts collapse?", "/latent", "moa_digits"),
        ("How does a network route an image?", "/routing", "multipath_cc_reg"),
        ("What does a cluster look like?", "/distributions", "neural_em_2d_normalized"),
        ("How does a mixture choose its own number of clusters?", "/pretraining", "moe_vae_digits"),
        ("Train your own", "/train", ""),
        ("Use your own pictures", "/your_data", ""),
    ],
)
def test_the_issue_lessons_open_their_pages(question: str, url_path: str, run: str) -> None:
    card = next(card for card in CARDS if card.question == question)
    assert (card.url_path, card.run) == (url_path, run)


def test_questions_and_keys_are_distinct_and_teasers_one_line() -> None:
    assert len({card.question for card in CARDS}) == len(CARDS)
    assert len({card.key for card in CARDS}) == len(CARDS)
    for card in CARDS:
        assert "\n" not in card.teaser and card.teaser.endswith("."), card.question


def test_a_cards_query_holds_its_gallery_run_and_its_view() -> None:
    card = LessonCard("Q?", "A.", "app_pages/routing.py", "Routing", "m", (("tab", "vs"),))
    assert card.query_params() == {"run": "gallery/m", "tab": "vs"}


def test_a_card_without_its_run_says_so_in_one_line() -> None:
    card = LessonCard("Q?", "A.", "app_pages/latent.py", "Latent space", run="moa_digits")
    assert card.missing({"moa_digits", "moa_plus_digits"}) == ""
    line = card.missing({"moa_plus_digits"})
    assert "moa_digits" in line and "make gallery" in line and "\n" not in line
    assert LessonCard("Q?", "A.", "app_pages/train.py", "Train").missing(set()) == ""


def test_a_card_shows_its_thumbnail_only_when_the_file_exists(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gallery, "THUMBNAIL_DIR", tmp_path)
    card = LessonCard("Q?", "A.", "app_pages/latent.py", "Latent space", thumbnail="moa_digits")
    assert card.image() is None
    (tmp_path / "moa_digits.png").write_bytes(b"\x89PNG")
    assert card.image() == tmp_path / "moa_digits.png"
    assert LessonCard("Q?", "A.", "app_pages/train.py", "Train").image() is None


def test_the_start_page_draws_every_card_enabled_as_far_as_the_gallery_goes() -> None:
    at = AppTest.from_file(str(ROOT / "app_pages" / "start.py"), default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Mixture Lab"
    bundled = {run.path.stem for run in gallery.gallery_runs()}
    buttons = [b for b in at.button if b.key.startswith("start_")]
    assert [b.label for b in buttons] == [f"Open {card.page_title}" for card in CARDS]
    for card, button in zip(CARDS, buttons, strict=True):
        assert button.disabled == bool(set(card.runs()) - bundled), card.question
    missing = [c for c in CARDS if c.missing(bundled)]
    assert len([c for c in at.caption if "make gallery" in c.value]) == len(missing)
