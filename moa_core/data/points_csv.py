"""A CSV of 2-D points → a point set: columns x, y and an optional label, header optional.

The first row is a header when its x or y is not a number. Fields are split on commas, or on
semicolons or tabs when the first row has those and no comma (spreadsheets in many locales
write `;`). Labels may be integers (kept in order: 3 < 10) or any text (sorted by name); each
becomes 0..K-1 with its own text as the class name. No label column: one class, `UNLABELLED`.
Points are standardized per column like the toy sets. Every problem is one line that names
the line and column ("line 12, column x: 'abc' is not a number").
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from moa_core.data.dataset import DatasetError, RawSplit
from moa_core.data.image_folder import MIN_PER_CLASS, MIN_SAMPLES, UNLABELLED
from moa_core.limits import env_number

DEFAULT_MAX_ROWS = 200_000
COLUMNS = ("x", "y", "label")


def max_rows() -> int:
    try:
        return int(env_number("MOA_DATA_MAX_ROWS", DEFAULT_MAX_ROWS))
    except ValueError as err:
        raise DatasetError(str(err)) from None


def read_points(data: bytes, source: str) -> RawSplit:
    """The standardized points and labels of the CSV `data` (named `source` in messages)."""
    rows = _rows(_text(data, source), source)
    if not rows:
        raise DatasetError(f"{source} holds no rows")
    first_line, first = rows[0]
    width = len(first)
    if width not in (2, 3):
        raise DatasetError(
            f"{source}: line {first_line} has {width} column{'s' * (width != 1)}; expected x, "
            "y and an optional label"
        )
    header = not all(_is_number(value) for value in first[:2])
    names = list(COLUMNS)
    if header:  # columns are named by the header in messages
        names = [name.strip() or default for name, default in zip(first, COLUMNS, strict=False)]
    body = rows[1:] if header else rows
    if len(body) > max_rows():
        raise DatasetError(
            f"{source} has more than {max_rows():,} rows (MOA_DATA_MAX_ROWS); use a sample"
        )
    points = np.empty((len(body), 2), dtype=np.float64)
    raw_labels = []
    for i, (line, fields) in enumerate(body):
        if len(fields) != width:
            raise DatasetError(
                f"{source}: line {line} has {len(fields)} columns, the first row {width}"
            )
        for j in range(2):
            points[i, j] = _number(fields[j], line, names[j], source)
        if width == 3:
            label = fields[2].strip()
            if not label:
                raise DatasetError(f"{source}: line {line} has an empty label")
            raw_labels.append(label)
    if len(body) < MIN_SAMPLES:
        raise DatasetError(f"{source} holds {len(body)} points; a set needs at least {MIN_SAMPLES}")
    class_names, labels = _labels(raw_labels, len(body), source)
    spread = points.std(axis=0)
    for j in range(2):
        if spread[j] == 0:
            raise DatasetError(f"{source}: column {names[j]} holds one value only; nothing to plot")
    return RawSplit(
        x=((points - points.mean(axis=0)) / spread).astype(np.float32),
        y=labels,
        kind="points",
        class_names=class_names,
    )


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")  # what a spreadsheet on Windows saves
        except UnicodeDecodeError:
            raise DatasetError(f"{source} is not a text file (save it as CSV)") from None


def _rows(text: str, source: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank rows."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = ","
    if "," not in first:
        delimiter = ";" if ";" in first else "\t" if "\t" in first else ","
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        return [(reader.line_num, fields) for fields in reader if any(f.strip() for f in fields)]
    except csv.Error as err:
        raise DatasetError(f"{source} is not a readable CSV file: {err}") from None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _number(value: str, line: int, column: str, source: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DatasetError(
            f"{source}: line {line}, column {column}: '{value.strip()}' is not a number"
        ) from None
    if not math.isfinite(number):
        raise DatasetError(
            f"{source}: line {line}, column {column}: '{value.strip()}' is not a finite number"
        )
    return number


def _labels(raw: list[str], n: int, source: str) -> tuple[tuple[str, ...], np.ndarray]:
    if not raw:
        return (UNLABELLED,), np.zeros(n, dtype=np.int64)
    try:
        values = sorted({int(v) for v in raw})
        names = tuple(str(v) for v in values)
        index = {str(v): i for i, v in enumerate(values)}
        labels = [index[str(int(v))] for v in raw]
    except ValueError:
        names = tuple(sorted(set(raw)))
        index = {name: i for i, name in enumerate(names)}
        labels = [index[v] for v in raw]
    counts = np.bincount(labels, minlength=len(names))
    if counts.min() < MIN_PER_CLASS:
        small = names[int(counts.argmin())]
        raise DatasetError(
            f"{source}: label '{small}' has {counts.min()} point; every class needs at "
            f"least {MIN_PER_CLASS}"
        )
    return names, np.asarray(labels, dtype=np.int64)
