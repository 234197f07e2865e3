"""Your own data (`folder:NAME`): zips of images, CSVs of points and MOA_DATA_DIR folders
become datasets; every bad upload is one line and writes nothing, anywhere."""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from tiny import TINY_MODEL

from moa_core import ui_state
from moa_core.cli import main
from moa_core.data import (
    DatasetError,
    add_user_set,
    delete_upload,
    labelled_splits,
    load_dataset,
    parse_spec,
    read_user_set,
    suggested_name,
    user_datasets,
    user_set_names,
)
from moa_core.viz.user_data import class_rows, points_figure, summary

SHAPES = ("circle", "square", "triangle")
MODES = ("RGBA", "L", "P", "RGB")
SIZES = ((10, 12), (60, 40), (28, 28), (33, 17))


def shape_png(kind: str, mode: str = "L", size: tuple[int, int] = (28, 28), ink="black") -> bytes:
    """A filled shape on white, saved as PNG in `mode` at `size` (width, height)."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    box = (width * 0.15, height * 0.15, width * 0.85, height * 0.85)
    if kind == "circle":
        draw.ellipse(box, fill=ink)
    elif kind == "square":
        draw.rectangle(box, fill=ink)
    else:
        draw.polygon([(width / 2, height * 0.1), (width * 0.1, height * 0.9), box[2:]], fill=ink)
    out = io.BytesIO()
    image.convert(mode).save(out, "PNG")
    return out.getvalue()


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def shapes_members(per_class: int = 4, top: str = "", colours: bool = False) -> dict[str, bytes]:
    """Class folders of shapes in every mode and several sizes (red and blue if `colours`)."""
    return {
        f"{top}{kind}/{i}.png": shape_png(
            kind,
            MODES[i % len(MODES)],
            SIZES[i % len(SIZES)],
            ("red", "blue")[i % 2] if colours else "black",
        )
        for kind in SHAPES
        for i in range(per_class)
    }


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MOA_CACHE_DIR, an empty working folder and no MOA_DATA_DIR."""
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MOA_DATA_DIR", raising=False)
    for name in ("MOA_DATA_MAX_FILES", "MOA_DATA_MAX_MB", "MOA_DATA_MAX_ROWS", "MOA_CACHE_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "cache"


def refused(file_name: str, data: bytes, name: str = "mine") -> str:
    """The one-line reason `data` is not added; asserts nothing was written anywhere."""
    with pytest.raises(DatasetError) as info:
        add_user_set(name, file_name, data)
    message = str(info.value)
    assert "\n" not in message
    root = Path.cwd().parent
    assert files_under(root) == [], files_under(root)  # neither the cache nor the cwd
    return message


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` pixels (no pixel data needed to say so)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def flat_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (8, 8), 255).save(out, "PNG")
    return out.getvalue()


def symlink_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in shapes_members(per_class=4).items():
            archive.writestr(name, data)
        link = zipfile.ZipInfo("circle/passwd.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return out.getvalue()


def good(**extra: bytes) -> bytes:
    return make_zip({**shapes_members(per_class=4), **extra})


BAD_ZIPS = {
    "not a zip": (b"circle,square\n1,2\n", "shapes.zip is not a zip file"),
    "a broken zip": (b"PK\x03\x04" + bytes(200), "shapes.zip is not a readable zip file"),
    "an empty zip": (make_zip({}), "shapes.zip holds no images"),
    "../": (good(**{"../evil.png": shape_png("circle")}), "'../evil.png' points outside"),
    "a/../../": (good(**{"a/../../x.png": shape_png("circle")}), "points outside"),
    "an absolute path": (good(**{"/etc/x.png": shape_png("circle")}), "points outside"),
    "a drive letter": (good(**{"C:/x.png": shape_png("circle")}), "'C:/x.png' points outside"),
    "a symlink": (symlink_zip(), "'circle/passwd.png' is a symbolic link"),
    "a text file": (good(**{"circle/notes.txt": b"hi"}), "'circle/notes.txt' is not an image"),
    "a fake image": (good(**{"circle/x.png": b"not a png"}), "circle/x.png is not an image"),
    "a pixel bomb": (good(**{"circle/big.png": png_header(10_000, 5_000)}), "too large"),
    "a flat image": (good(**{"circle/blank.png": flat_png()}), "blank.png is one flat colour"),
    "mixed layout": (good(**{"loose.png": shape_png("circle")}), "mixes loose images"),
    "too deep": (good(**{"circle/a/b.png": shape_png("circle")}), "'circle/a/b.png' is too deep"),
    "too few images": (make_zip(shapes_members(per_class=2)), "holds 6 images; a set needs"),
    "one image in a class": (good(**{"star/1.png": shape_png("circle")}), "class 'star' has 1"),
    "a ratio bomb": (
        make_zip({"circle/0.bmp": bytes(4 * 2**20)}, zipfile.ZIP_BZIP2),
        "the mark of a zip bomb",
    ),
}


@pytest.mark.parametrize("case", BAD_ZIPS)
def test_a_bad_zip_is_one_line_and_writes_nothing(cache: Path, case: str) -> None:
    data, expected = BAD_ZIPS[case]
    assert expected in refused("shapes.zip", data)


def test_zip_limits_come_from_the_environment(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_zip(shapes_members(per_class=4))  # 12 images of about 0.1–0.3 kB
    monkeypatch.setenv("MOA_DATA_MAX_FILES", "11")
    assert "holds more than 11 files (MOA_DATA_MAX_FILES)" in refused("s.zip", data)
    monkeypatch.setenv("MOA_DATA_MAX_FILES", "")
    monkeypatch.setenv("MOA_DATA_MAX_MB", "0.0001")
    assert "over the 105 bytes limit (MOA_DATA_MAX_MB)" in refused("s.zip", data)
    monkeypatch.setenv("MOA_DATA_MAX_MB", "lots")
    assert refused("s.zip", data).startswith("MOA_DATA_MAX_MB must be a number")
    monkeypatch.setenv("MOA_DATA_MAX_MB", "")
    monkeypatch.setenv("MOA_CACHE_MAX_MB", "0.001")
    assert "(MOA_CACHE_MAX_MB=0.001)" in refused("s.zip", data)


CSV_ROWS = "".join(f"{i % 5},{i * 0.5},{'ab'[i % 2]}\n" for i in range(12))
BAD_CSVS = {
    "text for a number": ("x,y\n1,2\n3,abc\n" + "1,2\n" * 10, "line 3, column y: 'abc' is not a"),
    "headerless text": ("1,2\n3,4\nfoo,5\n" + "1,2\n" * 10, "line 3, column x: 'foo' is not a"),
    "a NaN": ("1,2\n3,nan\n" + "1,2\n" * 10, "line 2, column y: 'nan' is not a finite number"),
    "an inf": ("1,2\n-inf,3\n" + "1,2\n" * 10, "'-inf' is not a finite number"),
    "one column": ("1\n2\n", "line 1 has 1 column; expected x, y and an optional label"),
    "four columns": ("1,2,3,4\n", "line 1 has 4 columns"),
    "a ragged row": (CSV_ROWS + "1,2\n", "line 13 has 2 columns, the first row 3"),
    "an empty label": (CSV_ROWS + "1,2,\n", "line 13 has an empty label"),
    "too few points": ("1,2\n3,4\n", "holds 2 points; a set needs at least 10"),
    "a lonely label": (CSV_ROWS + "1,2,c\n", "label 'c' has 1 point"),
    "a flat column": ("x,y\n" + "1,2\n3,2\n" * 6, "column y holds one value only"),
    "no rows": ("\n\n", "holds no rows"),
}


@pytest.mark.parametrize("case", BAD_CSVS)
def test_a_bad_csv_is_one_line_and_writes_nothing(cache: Path, case: str) -> None:
    text, expected = BAD_CSVS[case]
    assert expected in refused("points.csv", text.encode())


def test_too_many_rows_and_bad_names_and_types_are_refused(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_DATA_MAX_ROWS", "11")
    assert "more than 11 rows (MOA_DATA_MAX_ROWS)" in refused("p.csv", CSV_ROWS.encode())
    data = make_zip(shapes_members())
    assert "'Shapes!' cannot name a set" in refused("s.zip", data, name="Shapes!")
    assert "'mnist' is a built-in dataset's name" in refused("s.zip", data, name="mnist")
    assert "upload a .zip of images or a .csv" in refused("s.tar", data)
    assert suggested_name("My Shapes (2).ZIP") == "my_shapes_2"


def test_an_image_folder_zip_of_mixed_modes_and_sizes_loads_as_a_dataset(cache: Path) -> None:
    members = shapes_members(per_class=5, top="shapes/")
    members.update({"__MACOSX/shapes/._0.png": b"junk", "shapes/.DS_Store": b"x"})
    added = add_user_set("shapes", "shapes.zip", make_zip(members))
    assert (added.spec, added.kind) == ("folder:shapes", "image")
    assert files_under(cache) == ["user_data/shapes.npz"]
    data = load_dataset("folder:shapes")
    # Every image is grey (black on white in four modes): greyscale 28×28, like MNIST.
    assert data.x.shape == (15, 1, 28, 28) and data.x.dtype == torch.float32
    assert float(data.x.min()) == 0.0 and float(data.x.max()) == 1.0
    assert data.class_names == list(SHAPES)
    assert data.y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    stored = read_user_set(user_datasets()[0])  # what the page previews: uint8, no copy
    assert stored.x.dtype == np.uint8 and not stored.x.flags.writeable
    assert summary(stored) == "15 images, 3 classes, greyscale 28×28"
    # Shapes kept whatever the mode and size: ink in the middle, white paper in the corner,
    # and a square holds more ink than the circle drawn in the same box.
    assert data.x[:, 0, 14, 14].max() < 0.1 and data.x[:, 0, 0, 0].min() > 0.9
    ink = 1 - data.x.mean(dim=(1, 2, 3))
    assert (ink[5:10] > ink[:5]).all()
    subset = load_dataset("folder:shapes:0,2")
    assert subset.name == "folder:shapes:0,2" and subset.class_names == ["circle", "triangle"]
    assert parse_spec(" Folder:Shapes : 2, 0") == ("folder:shapes", [0, 2])
    with pytest.raises(DatasetError, match=r"has no class 7 .*0 \(circle\), 1 \(square\)"):
        load_dataset("folder:shapes:7")
    train, test = labelled_splits("folder:shapes")
    assert len(train) + len(test) == 15 and len(test) > 0  # a fixed held-out fifth
    assert "folder:shapes" in ui_state.image_datasets()
    assert "folder:shapes" not in ui_state.point_datasets()
    assert "exists already" in str(_error(lambda: add_user_set("shapes", "s.zip", b"")))
    rows = class_rows(stored)
    assert [(row.name, row.count) for row in rows] == [(s, 5) for s in SHAPES]
    assert rows[0].picture.shape == (3 * 28 + 2 * 2, 5 * 3 * 28 + 4 * 2 + 2 * 2, 3)
    delete_upload("shapes")
    assert files_under(cache) == [] and user_set_names() == []
    message = str(_error(lambda: load_dataset("folder:shapes")))
    assert "unknown dataset 'folder:shapes' (your sets: none yet" in message


def test_colour_images_become_rgb_32_and_loose_images_a_set_without_labels(cache: Path) -> None:
    add_user_set("colour", "c.zip", make_zip(shapes_members(per_class=4, colours=True)))
    colour = load_dataset("folder:colour")
    assert colour.x.shape == (12, 3, 32, 32)
    red = colour.x[0, :, 16, 16]  # the first circle is red in its middle
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1
    loose = {f"pics/{i}.png": shape_png(SHAPES[i % 3]) for i in range(11)}
    add_user_set("loose", "pics.zip", make_zip(loose))
    data = load_dataset("folder:loose")
    assert data.class_names == ["(no labels)"] and data.y.unique().tolist() == [0]
    assert summary(read_user_set(user_datasets()[1])) == "11 images, no labels, greyscale 28×28"
    assert user_set_names("image") == ["folder:colour", "folder:loose"]


def test_csv_points_with_and_without_header_and_labels(cache: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [
        (rng.normal(3 * (i % 2), 1), rng.normal(100, 10), ("cat", "dog")[i % 2]) for i in range(40)
    ]
    text = "x,y,animal\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
    add_user_set("pets", "pets.csv", text.encode())
    pets = load_dataset("folder:pets")
    assert pets.kind == "points" and pets.x.shape == (40, 2) and pets.class_names == ["cat", "dog"]
    assert torch.allclose(pets.x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(pets.x.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    # No header, integer labels (10 sorts after 3), semicolons as a spreadsheet writes them.
    numbered = "".join(f"{a};{b};{(3, 10)[i % 2]}\n" for i, (a, b, _) in enumerate(rows))
    add_user_set("numbered", "n.csv", numbered.encode())
    data = load_dataset("folder:numbered")
    assert data.class_names == ["3", "10"] and data.y[:2].tolist() == [0, 1]
    add_user_set("plain", "p.csv", "".join(f"{a},{b}\n" for a, b, _ in rows).encode())
    assert load_dataset("folder:plain").class_names == ["(no labels)"]
    assert ui_state.point_datasets()[-3:] == ["folder:numbered", "folder:pets", "folder:plain"]
    stored = read_user_set(user_datasets()[1])
    assert summary(stored) == "40 points, 2 classes"
    figure = points_figure(stored, "pets")
    assert [trace.name for trace in figure.data] == ["cat (20)", "dog (20)"]


def test_a_moa_data_dir_folder_is_a_set_and_is_converted_again_when_it_changes(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    for name, data in shapes_members(per_class=4).items():
        (root / "toys" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "toys" / name).write_bytes(data)
    (root / "dots.csv").write_text(CSV_ROWS)
    (root / "mnist").mkdir()  # a built-in set's IDX folder: never a user set
    (root / "mnist" / "circle.png").write_bytes(shape_png("circle"))
    (root / "idx-files").mkdir()  # no images: not a set
    (root / "idx-files" / "train-images-idx3-ubyte").write_bytes(b"\0" * 16)
    monkeypatch.setenv("MOA_DATA_DIR", str(root))
    assert user_set_names() == ["folder:dots", "folder:toys"]
    assert load_dataset("folder:toys").x.shape == (12, 1, 28, 28)
    assert load_dataset("folder:dots").class_names == ["a", "b"]
    (root / "toys" / "circle" / "9.png").write_bytes(shape_png("circle", size=(50, 20)))
    assert load_dataset("folder:toys").x.shape == (13, 1, 28, 28)
    # Only the newest conversion stays in the cache; the data folder is never written to.
    cached = files_under(cache)
    assert len([f for f in cached if f.startswith("user_data/data_dir/toys-")]) == 1
    (root / "toys" / "circle" / "notes.txt").write_text("hi")
    message = str(_error(lambda: load_dataset("folder:toys")))
    assert message == f"{root}/toys: 'circle/notes.txt' is not an image " + (
        "(expected PNG, JPEG, GIF, BMP, TIFF, WebP or PPM files only)"
    )
    assert "already" in str(_error(lambda: add_user_set("toys", "t.zip", b"")))


def test_moa_train_and_eval_on_a_user_set(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    add_user_set("shapes", "shapes.zip", make_zip(shapes_members(per_class=6)))
    settings = [f"{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()] + ["batch_size=6"]
    out = tmp_path / "run.safetensors"
    argv = ["train", "moa_plus", "--dataset", "folder:shapes", "--epochs", "1", "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--set", *settings]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["dataset"] == "folder:shapes" and out.is_file()
    assert main(["eval", str(out), "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["dataset"] == "folder:shapes"
    assert evaluated["nmi"] == pytest.approx(trained["nmi"], abs=1e-4)


def _error(action) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        action()
    assert "\n" not in str(info.value)
    return info.value
