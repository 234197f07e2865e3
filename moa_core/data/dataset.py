"""The one in-memory dataset type every loader returns, and the error users see."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch


class DatasetError(ValueError):
    """A dataset could not be loaded; the message is one line, shown to users as-is."""

    def __init__(self, message: str) -> None:
        # Collapse newlines from wrapped library errors so the UI never shows a ragged block.
        super().__init__(" ".join(str(message).split()))


@dataclass
class Dataset:
    """Samples and labels ready for training.

    `x` is float32: images `[N, C, H, W]` in [0, 1], points `[N, 2]` (the toy sets standardized
    but spiral25k, on paper 002's scale).
    `y` is int64 `[N]` holding the original labels (3 and 5 for "mnist:3,5").
    `class_names[i]` names the i-th smallest label present.
    `targets` is float32 `[N, out]` for regression (paper 002, §2.1, see `regression`), else
    None; it follows `x` through `to` and `take`.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    kind: str
    class_names: list[str]
    # Every label the spec can hold (its class list, or all of the source's labels), so the
    # train and test sides number their classes alike even when a sample misses one.
    label_values: tuple[int, ...] = ()
    targets: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return int(torch.unique(self.y).numel())

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        if self.kind != "image":
            return None
        c, h, w = self.x.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def names_by_label(self) -> dict[int, str]:
        """Each label present → its class name."""
        return dict(zip(torch.unique(self.y).tolist(), self.class_names, strict=True))

    def class_indices(self) -> torch.Tensor:
        """Labels as positions in `label_values` (0 … K − 1), the targets a classifier learns."""
        values = torch.as_tensor(self.label_values or torch.unique(self.y).tolist())
        return torch.searchsorted(values.to(self.y.device), self.y)

    def to(self, device: str | torch.device) -> Dataset:
        targets = None if self.targets is None else self.targets.to(device)
        return replace(self, x=self.x.to(device), y=self.y.to(device), targets=targets)

    def take(self, index: torch.Tensor) -> Dataset:
        """The samples at `index` (on the data's device), with their labels and targets; the
        class names shrink to the labels still present."""
        y = self.y[index]
        names = self.names_by_label
        return replace(
            self,
            x=self.x[index],
            y=y,
            targets=None if self.targets is None else self.targets[index],
            class_names=[names[c] for c in torch.unique(y).tolist()],
        )

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class RawSplit:
    """What a source hands the registry before class subsetting and `limit`.

    `x` is uint8 0..255 (kept compact for caching; scaled when tensors are made) or float32
    already in final form; `y` is int64; `class_names` covers every label the source knows.
    """

    x: np.ndarray
    y: np.ndarray
    kind: str
    class_names: tuple[str, ...]
