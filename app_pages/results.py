"""Results: each paper's headline table with the paper's numbers, ours beside them (mean ±
std over seeds, from `benchmarks/results.jsonl`), the command that reproduces each of ours,
and a plain flag where we are short and why. Nothing here trains."""

from __future__ import annotations

import streamlit as st

from app_pages import presenter
from moa_core.results import MEASUREMENTS, ResultTable, gallery_results, result_tables
from moa_core.viz.results import paper_vs_ours_figure

ROW_PX = 35  # a dataframe row: the table shows every row without a scroll bar
SCORE_NAMES = {"acc": "ACC", "nmi": "NMI", "accuracy": "accuracy", "regression_mse": "MSE"}


@st.cache_data(show_spinner=False, max_entries=2)
def _tables(measured_at: float) -> list[ResultTable]:
    """Read again whenever `benchmarks/results.jsonl` changes (`measured_at`: its mtime)."""
    return result_tables()


def table_rows(table: ResultTable) -> list[dict]:
    """The table as a student reads it: one short line per row; the whys come below it."""
    return [
        {
            "Row": label,
            "Paper": row.paper,
            "Ours": row.ours.text() if row.ours else "—",
            "Epochs": str(row.epochs) if row.epochs else "—",
            "Standing": row.standing(table.higher_is_better),
        }
        for label, row in zip(table.labels(), table.rows, strict=True)
    ]


def whys(table: ResultTable) -> list[str]:
    """Each flag once, with the rows it speaks for and what we measured them on."""
    grouped: dict[str, list[str]] = {}
    for row in table.rows:
        if row.flag:
            where = f" (ours: {row.measured_on})" if row.measured_on else ""
            grouped.setdefault(row.flag, []).append(f"**{row.dataset} · {row.method}**{where}")
    return [f"- {'; '.join(rows)} — {flag}" for flag, rows in grouped.items()]


def draw_table(table: ResultTable) -> None:
    st.subheader(f"Paper {table.paper}: {table.paper_title}")
    st.caption(
        f"{table.table}. {table.measured} of {len(table.rows)} rows measured by us; "
        f"{'higher' if table.higher_is_better else 'lower'} is better."
    )
    figure = paper_vs_ours_figure(table)  # no toolbar: it would sit on the legend
    presenter.chart(figure, width="stretch", config={"displayModeBar": False})
    rows = table_rows(table)
    st.dataframe(rows, hide_index=True, width="stretch", height=ROW_PX * (len(rows) + 1) + 3)
    reasons = whys(table)
    if reasons:
        st.markdown("**Why ours differ**\n\n" + "\n".join(reasons))
    commands = sorted({row.command for row in table.rows if row.command})
    notes = [f"- **{row.dataset} · {row.method}:** {row.note}" for row in table.rows if row.note]
    with st.expander("How to reproduce our numbers, and the paper's fine print"):
        for command in commands:
            st.code(command, language="bash")
        if notes:
            st.markdown("\n".join(notes))


st.title("Results")
st.markdown(
    "Each paper's headline table, with **our latest measured numbers** beside the paper's. "
    "Ours are means ± standard deviations over seeds (deep clustering moves with the seed), "
    "read from `benchmarks/results.jsonl`. Where we are short of the paper, the flag says "
    "why: most often a CPU budget, a smaller stand-in dataset, or no GPU yet. Nothing on "
    "this page trains; `moa evaluate MODEL --dataset NAME --seeds 5` measures a row anew."
)
measured_at = MEASUREMENTS.stat().st_mtime if MEASUREMENTS.exists() else 0.0
for paper_table in _tables(measured_at):
    draw_table(paper_table)


st.subheader("The gallery's runs")
st.caption(
    "The runs every page opens on: one seed (0) each, on a CPU. They show what a model does, "
    "not how well it does on average."
)
gallery = gallery_results()
st.dataframe(
    [
        {"Run": run.title}
        | {
            name: f"{run.scores[key]:.4g}" if key in run.scores else "—"
            for key, name in SCORE_NAMES.items()
        }
        | {"Epochs": run.epochs}
        for run in gallery
    ],  # fmt: skip
    hide_index=True,
    width="stretch",
    height=ROW_PX * (len(gallery) + 1) + 3,
)
with st.expander("How to retrain each gallery run"):
    st.code("\n".join(run.command for run in gallery), language="bash")
