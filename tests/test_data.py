"""Data registry: shapes, ranges, subsets, limits, file formats and the messages users see."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from moa_core.data import (
    Dataset,
    DatasetError,
    data_dir,
    dataset_names,
    image_sets,
    load_dataset,
    parse_spec,
    point_set_names,
)

# Read before the autouse fixture clears MOA_DATA_DIR for every test.
REAL_DATA = Path(
    os.environ.get("MOA_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
)
_UNPICKLED: list[int] = []


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may download, read the Debian package, or see the caller's MOA_DATA_DIR."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError(
            "Error downloading train-images-idx3-ubyte.gz:\n"
            "Tried a mirror, got:\nnetwork is unreachable (test)"
        )

    monkeypatch.setattr(image_sets, "_torchvision", no_network)
    monkeypatch.setattr(image_sets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")
    monkeypatch.delenv("MOA_DATA_DIR", raising=False)


def _use_dir(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("MOA_DATA_DIR", str(path))
    return path


def _error(spec: str, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(spec, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of uint8 values: magic 0x00 0x00 0x08 ndim, big-endian dims, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def _tiny_npz(path: Path, **overrides: np.ndarray) -> dict[str, np.ndarray]:
    """An npz of 6 train / 4 test 4x4 images with labels 0..2 (and any keys overridden)."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8),
        "x_test": rng.integers(0, 256, size=(4, 4, 4), dtype=np.uint8),
        "y_test": np.array([2, 1, 0, 0], dtype=np.uint8),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


# --- names and specs ---------------------------------------------------------------------


def test_dataset_names() -> None:
    assert dataset_names() == [
        "blobs",
        "cifar10",
        "digits",
        "digits2d",
        "fashion_mnist",
        "mnist",
        "mnist2d",
        "moons",
        "rings",
        "spiral",
        "spiral25k",
        "usps",
        "usps2d",
    ]
    assert point_set_names() == [
        "blobs", "digits2d", "mnist2d", "moons", "rings", "spiral", "spiral25k", "usps2d"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mnist:3,5", ("mnist", [3, 5])),
        ("digits", ("digits", None)),
        (" MNIST : 5, 3,5 ", ("mnist", [3, 5])),
        ("cifar10:0", ("cifar10", [0])),
    ],
)
def test_parse_spec(spec: str, expected: tuple[str, list[int] | None]) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("", "empty"),
        ("imagenet", "imagenet"),
        ("mnist:", "class list"),
        ("mnist:3,", "class list"),
        ("mnist:three", "three"),
        ("mnist:-1", "-1"),
        ("mnist:3:5", "3:5"),
    ],
)
def test_bad_spec_is_one_line_error(spec: str, named: str) -> None:
    with pytest.raises(DatasetError, match=named) as info:
        parse_spec(spec)
    assert "\n" not in str(info.value)


def test_error_message_is_folded_onto_one_line() -> None:
    assert str(DatasetError("cannot read x:\n  Tried a mirror,\n got: offline")) == (
        "cannot read x: Tried a mirror, got: offline"
    )


def test_unknown_name_lists_known_names() -> None:
    message = _error("imagenet")
    assert "imagenet" in message
    assert all(name in message for name in dataset_names())


def test_unknown_class_names_valid_labels() -> None:
    message = _error("digits:3,12")
    assert "12" in message
    assert "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in message


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"split": "validation"}, "validation"),
        ({"limit": 0}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], named: str) -> None:
    assert named in _error("digits", **kwargs)


# --- embedded digits ---------------------------------------------------------------------


def test_digits_shape_range_and_labels() -> None:
    ds = load_dataset("digits")
    reference = load_digits()
    assert isinstance(ds, Dataset)
    assert ds.x.shape == (1797, 1, 16, 16) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert ds.kind == "image" and ds.image_shape == (1, 16, 16) and len(ds) == 1797
    assert ds.num_classes == 10 and ds.class_names == [str(d) for d in range(10)]
    assert np.array_equal(ds.y.numpy(), reference.target)


def test_digits_resize_is_bilinear_half_pixel() -> None:
    """With align_corners=False, output (0,0) copies input (0,0); (1,1) is a 3:1 blend."""
    ds = load_dataset("digits")
    images = load_digits().images / 16.0
    assert np.allclose(ds.x[:, 0, 0, 0].numpy(), images[:, 0, 0], atol=1e-6)
    w = np.array([0.75, 0.25])
    expected = np.einsum("i,nij,j->n", w, images[:, :2, :2], w)
    assert np.allclose(ds.x[:, 0, 1, 1].numpy(), expected, atol=1e-6)


def test_digits_test_split_is_the_whole_set() -> None:
    assert torch.equal(load_dataset("digits", "test").x, load_dataset("digits", "train").x)


def test_class_subset_keeps_only_those_labels() -> None:
    ds = load_dataset("digits:5,3")
    counts = Counter(load_digits().target.tolist())
    assert set(ds.y.tolist()) == {3, 5}
    assert len(ds) == counts[3] + counts[5] == 365
    assert ds.name == "digits:3,5" and ds.class_names == ["3", "5"] and ds.num_classes == 2


def test_limit_is_seeded_and_applied_after_subset() -> None:
    full = load_dataset("digits:3,5")
    a = load_dataset("digits:3,5", limit=50, seed=7)
    b = load_dataset("digits:3,5", limit=50, seed=7)
    c = load_dataset("digits:3,5", limit=50, seed=8)
    assert len(a) == 50 and set(a.y.tolist()) <= {3, 5}
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    full_rows = {row.numpy().tobytes() for row in full.x}
    assert all(row.numpy().tobytes() in full_rows for row in a.x)
    assert len(load_dataset("digits:3,5", limit=10_000)) == len(full)


def test_loads_return_fresh_tensors() -> None:
    load_dataset("digits").x.zero_()
    assert float(load_dataset("digits").x.max()) == 1.0


def test_to_moves_both_tensors() -> None:
    moved = load_dataset("digits:0", limit=3).to("meta")
    assert moved.x.device.type == "meta" and moved.y.device.type == "meta"
    assert moved.class_names == ["0"]


# --- toy point sets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "n_classes"), [("spiral", 5), ("moons", 2), ("blobs", 4), ("rings", 3)]
)
def test_toy_sets_are_standardized_points(name: str, n_classes: int) -> None:
    ds = load_dataset(name)
    assert ds.x.shape == (1500, 2) and ds.kind == "points" and ds.image_shape is None
    assert torch.allclose(ds.x.mean(dim=0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(ds.x.std(dim=0, unbiased=False), torch.ones(2), atol=1e-5)
    assert sorted(set(ds.y.tolist())) == list(range(n_classes))
    assert len(load_dataset(name, "test")) == 500


def test_spiral_arms_seeds_and_splits() -> None:
    ds = load_dataset("spiral")
    assert Counter(ds.y.tolist()) == {arm: 300 for arm in range(5)}
    assert ds.class_names == [f"arm {i}" for i in range(5)]
    assert torch.equal(ds.x, load_dataset("spiral", seed=0).x)
    assert not torch.equal(ds.x, load_dataset("spiral", seed=1).x)
    assert not torch.equal(ds.x[:500], load_dataset("spiral", "test").x)


# --- locating image files ----------------------------------------------------------------


def test_data_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert data_dir() is None
    monkeypatch.setenv("MOA_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path


def test_missing_data_names_file_and_variable_when_unset() -> None:
    message = _error("mnist")
    assert "mnist.npz" in message and "MOA_DATA_DIR" in message
    assert "currently unset" in message and message.endswith("download failed: no network")


def test_missing_data_names_the_empty_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _use_dir(monkeypatch, tmp_path / "empty")
    message = _error("cifar10")
    assert "cifar10.npz" in message and f"MOA_DATA_DIR (currently {root})" in message


def test_npz_missing_key_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    _tiny_npz(root / "mnist.npz", y_test=None)
    message = _error("mnist")
    assert "y_test" in message and str(root / "mnist.npz") in message


def test_npz_object_array_is_not_unpickled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    tripwire = np.empty(6, dtype=object)
    tripwire[:] = [_Tripwire() for _ in range(6)]
    _tiny_npz(root / "mnist.npz", x_train=tripwire)
    message = _error("mnist")
    assert "x_train" in message and "object array" in message
    assert _UNPICKLED == []


def test_pickle_named_npz_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    (root / "usps.npz").write_bytes(pickle.dumps(_Tripwire()))
    assert "pickled" in _error("usps")
    assert _UNPICKLED == []


def test_npz_layouts_and_ranges(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    signed = np.zeros((6, 4, 4, 1), dtype=np.float32)  # NHWC in [-1, 1], like raw USPS
    signed[0, 0, 0, 0], signed[0, 0, 1, 0] = -1.0, 1.0
    wide = np.full((4, 3, 4, 4), 51.0)  # NCHW float64 in 0..255
    arrays = _tiny_npz(root / "usps.npz", x_train=signed, x_test=wide)
    train, test = load_dataset("usps"), load_dataset("usps", "test")
    assert train.x.shape == (6, 1, 4, 4) and test.x.shape == (4, 3, 4, 4)
    assert train.x[0, 0, 0, :2].tolist() == [0.0, 1.0] and float(train.x[1].max()) == 0.5
    assert torch.allclose(test.x, torch.full_like(test.x, 0.2))
    assert test.y.tolist() == arrays["y_test"].tolist()


def test_uint8_npz_scales_by_255(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    arrays = _tiny_npz(_use_dir(monkeypatch, tmp_path) / "mnist.npz")
    ds = load_dataset("mnist:1,2")
    keep = np.isin(arrays["y_train"], [1, 2])
    expected = torch.from_numpy(arrays["x_train"][keep]).float().unsqueeze(1) / 255
    assert torch.equal(ds.x, expected) and ds.y.tolist() == [1, 2, 1, 2]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"x_train": np.zeros((6, 16), dtype=np.uint8)}, "shape"),
        ({"y_train": np.zeros(5, dtype=np.uint8)}, "labels"),
        ({"y_train": np.array([0, 1, 2, 0, 1, 10])}, "0..9"),
        ({"x_train": np.full((6, 4, 4), 300.0)}, "300"),
    ],
)
def test_npz_bad_contents(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, override: dict, named: str
) -> None:
    _tiny_npz(_use_dir(monkeypatch, tmp_path) / "mnist.npz", **override)
    assert named in _error("mnist")


def test_npz_is_cached_per_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    _tiny_npz(root / "mnist.npz")
    first = load_dataset("mnist")
    (root / "mnist.npz").unlink()
    assert torch.equal(load_dataset("mnist").x, first.x)


@pytest.mark.parametrize(
    ("folder", "suffix"), [("mnist", ".gz"), ("MNIST/raw", ""), ("mnist", ".idx")]
)
def test_idx_files_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, folder: str, suffix: str
) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    images = np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4)
    labels = np.array([7, 0, 7], dtype=np.uint8)
    if suffix == ".idx":  # the name some browsers give the unpacked files
        _write_idx(root / folder / "t10k-images.idx3-ubyte", images)
        _write_idx(root / folder / "t10k-labels.idx1-ubyte", labels)
    else:
        _write_idx(root / folder / f"t10k-images-idx3-ubyte{suffix}", images)
        _write_idx(root / folder / f"t10k-labels-idx1-ubyte{suffix}", labels)
    ds = load_dataset("mnist", "test")
    assert ds.x.shape == (3, 1, 5, 4) and ds.y.tolist() == [7, 0, 7]
    assert float(ds.x[0, 0, 1, 2]) == pytest.approx(6 / 255)
    assert ds.class_names == ["0", "7"]


def test_idx_bad_magic_and_missing_labels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    images = root / "mnist" / "train-images-idx3-ubyte"
    _write_idx(images, np.zeros((2, 3, 3)))
    assert "train-labels-idx1-ubyte" in _error("mnist")
    # A well-formed 1-D uint8 IDX body whose first two magic bytes are not zero.
    (root / "mnist" / "train-labels-idx1-ubyte").write_bytes(
        b"\x01\x00\x08\x01" + b"\x00" * 3 + b"\x02\x00\x00"
    )
    assert "magic" in _error("mnist")


def test_npz_wins_over_idx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _use_dir(monkeypatch, tmp_path)
    _tiny_npz(root / "mnist.npz")
    _write_idx(root / "mnist" / "train-images-idx3-ubyte", np.zeros((1, 4, 4)))
    _write_idx(root / "mnist" / "train-labels-idx1-ubyte", np.zeros(1))
    assert len(load_dataset("mnist")) == 6


def test_debian_fashion_mnist_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    debian = tmp_path / "fashion-mnist"
    monkeypatch.setattr(image_sets, "DEBIAN_FASHION_MNIST", debian)
    _write_idx(debian / "train-images-idx3-ubyte.gz", np.full((2, 28, 28), 255))
    _write_idx(debian / "train-labels-idx1-ubyte.gz", np.array([9, 0]))
    ds = load_dataset("fashion_mnist")
    assert ds.class_names == ["T-shirt/top", "Ankle boot"] and float(ds.x.min()) == 1.0
    message = _error("fashion_mnist", split="test")
    assert "fashion_mnist.npz" in message and "dataset-fashion-mnist" in message


# --- the real files in ../shared/data ----------------------------------------------------

needs_real_data = pytest.mark.skipif(
    not (REAL_DATA / "mnist.npz").is_file(), reason=f"no real data in {REAL_DATA}"
)


@needs_real_data
def test_real_mnist_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_DATA_DIR", str(REAL_DATA))
    ds = load_dataset("mnist:3,5")
    assert set(ds.y.tolist()) == {3, 5}
    assert ds.x.shape == (6131 + 5421, 1, 28, 28)  # official MNIST train counts of 3 and 5
    assert 0.0 <= float(ds.x.min()) and float(ds.x.max()) <= 1.0


@needs_real_data
def test_real_usps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_DATA_DIR", str(REAL_DATA))
    ds = load_dataset("usps")
    assert ds.image_shape == (1, 16, 16) and len(ds) == 7291
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    counts = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]  # from SOURCES.md
    assert torch.bincount(ds.y).tolist() == counts
    assert len(load_dataset("usps", "test")) == 2007


@needs_real_data
def test_real_fashion_mnist_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_DATA_DIR", str(REAL_DATA))
    ds = load_dataset("fashion_mnist", "test", limit=500, seed=3)
    assert ds.x.shape == (500, 1, 28, 28) and ds.class_names[-1] == "Ankle boot"
    assert torch.equal(ds.y, load_dataset("fashion_mnist", "test", limit=500, seed=3).y)


def _trip() -> int:
    _UNPICKLED.append(1)
    return 0


class _Tripwire:
    """Calls `_trip` when unpickled: the loader must never get that far."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return _trip, ()


# --- 2-D bottleneck sets (paper 004, Sec. 8.1) --------------------------------------------


@pytest.mark.slow
def test_digits2d_is_built_once_and_keeps_the_classes_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The 2-unit bottleneck of a supervised CNN: every digit, 2 columns, classes that a
    nearest-neighbour vote recovers (visible groups), cached after the first build."""
    from sklearn.neighbors import KNeighborsClassifier

    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    data = load_dataset("digits2d")
    images = load_dataset("digits")
    assert data.kind == "points" and data.x.shape == (1797, 2)
    assert torch.equal(data.y, images.y)
    assert abs(float(data.x.mean())) < 1e-4
    knn = KNeighborsClassifier(15).fit(data.x.numpy(), data.y.numpy())
    assert knn.score(data.x.numpy(), data.y.numpy()) > 0.9
    cached = next(tmp_path.glob("digits2d-*.npz"))
    stamp = cached.stat().st_mtime_ns
    again = load_dataset("digits2d:3,5")
    assert cached.stat().st_mtime_ns == stamp  # read back, not rebuilt
    assert set(again.y.tolist()) == {3, 5}


def test_mnist2d_without_mnist_names_the_missing_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    _use_dir(monkeypatch, tmp_path / "empty")
    assert "mnist" in _error("mnist2d")
    assert not list(tmp_path.glob("mnist2d-*.npz"))


def test_unreadable_2d_cache_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    from moa_core.data.bottleneck import FORMAT_VERSION

    (tmp_path / f"digits2d-v{FORMAT_VERSION}.npz").write_bytes(b"not a zip file")
    message = _error("digits2d")
    assert "unreadable 2-D point cache" in message and "delete it to rebuild" in message
