"""What a link's query string may say about a view (`moa_core.view_state`): good values are
read back exactly, bad or stale ones give the default and one short phrase."""

from __future__ import annotations

import pytest

from moa_core import view_state

COLORS = ("cluster", "label", "entropy")


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "1"), (False, "0"), ([0, 5, 27], "0,5,27"), ((), ""), (0.25, "0.25"), (-3.0, "-3.0")],
)
def test_values_are_written_as_the_url_holds_them(value, text) -> None:
    assert view_state.as_text(value) == text


def test_a_choice_named_by_the_link_is_taken() -> None:
    assert view_state.choice("color", "label", COLORS, "cluster") == ("label", None)
    assert view_state.choice("run", None, ["gallery/moa_digits"], "x") == ("x", None)  # unsaid
    # Options that are not strings match by their URL text.
    assert view_state.choice("inputs", "3", (1, 2, 3), 2) == (3, None)


def test_an_unknown_choice_is_the_default_and_one_phrase() -> None:
    value, problem = view_state.choice("run", "gallery/nope", ["gallery/moa_digits"], "d")
    assert value == "d"
    assert problem == "run 'gallery/nope' is not available"


@pytest.mark.parametrize(
    ("raw", "expected", "problem"),
    [
        ("30", 30, None),
        ("5", 5, None),  # the ends are inside
        ("50", 50, None),
        ("abc", 15, "nn 'abc' is not a number"),
        ("2.5", 15, "nn '2.5' is not a number"),  # an int slider takes no fraction
        ("51", 15, "nn 51 is outside 5 … 50"),
        ("-1", 15, "nn -1 is outside 5 … 50"),
        ("", 15, "nn '' is not a number"),
    ],
)
def test_an_integer_within_its_range(raw, expected, problem) -> None:
    value, said = view_state.number("nn", raw, 5, 50, 15)
    assert (value, said) == (expected, problem)
    assert type(value) is int


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [("1.5", 1.5, False), ("-3", -3.0, False), ("nan", 0.0, True), ("inf", 0.0, True)],
)
def test_a_float_within_its_range_and_finite(raw, expected, bad) -> None:
    value, problem = view_state.number("z", raw, -3.0, 3.0, 0.0)
    assert value == expected and type(value) is float
    assert (problem is not None) == bad


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("0", False), (None, True)])
def test_a_flag_is_1_or_0(raw, expected) -> None:
    assert view_state.flag("fourier", raw, True) == (expected, None)


def test_a_flag_in_other_words_is_the_default() -> None:
    assert view_state.flag("fourier", "yes", False) == (False, "fourier 'yes' is not 1 or 0")


def test_a_subset_keeps_the_links_order_and_drops_repeats() -> None:
    gates = range(12)
    assert view_state.subset("gates", "7,0,7", gates, [0, 11]) == ([7, 0], None)
    assert view_state.subset("gates", "", gates, [0, 11]) == ([], None)  # all cleared
    assert view_state.subset("gates", None, gates, [0, 11]) == ([0, 11], None)


def test_a_subset_with_one_unknown_item_is_the_default_naming_it() -> None:
    value, problem = view_state.subset("gates", "0,27,x", range(12), [0, 11])
    assert value == [0, 11]
    assert problem == "gates '27,x' is not available"


def test_a_long_bad_value_is_cut_to_fit_one_line() -> None:
    _, problem = view_state.choice("run", "r" * 500, ["a"], "a")
    assert len(problem) < 80 and problem.endswith("…' is not available")


@pytest.mark.parametrize(
    "value", [["gallery/moa_digits"], [0, 11], [2.5], [True]], ids=["text", "ints", "float", "bool"]
)
def test_what_is_written_reads_back_the_same(value) -> None:
    """A page's own link round-trips: publish's text parses back to the same view."""
    options = [*value, "other"]
    assert view_state.subset("p", view_state.as_text(value), options, []) == (value, None)
    assert view_state.choice("p", view_state.as_text(value[0]), options, "x") == (value[0], None)
