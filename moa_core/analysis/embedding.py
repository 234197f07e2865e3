"""2-D UMAP embeddings of latent codes, cached per (run, split, parameters).

umap-learn compiles its numba kernels on first use (14 s of CPU for 300 points on this
laptop). `load_umap()` keeps them in numba's on-disk cache, so only a machine's first process
compiles them (later ones: 0.4 s), and `warm_up()` pays even that at app start-up so the
first click on the Latent page is not the slow one.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import ModuleType

import numpy as np

_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_CACHE_SIZE = 32
_LOCK = threading.Lock()
_IMPORT_LOCK = threading.Lock()
_KERNEL_PACKAGES = ("umap", "pynndescent")
_kernels_cached = False  # once per process


@dataclass(frozen=True)
class UmapParams:
    n_neighbors: int = 15
    min_dist: float = 0.1
    seed: int = 0


def _fingerprint(latents: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(latents, dtype=np.float32).tobytes()).hexdigest()


def umap_embedding(
    latents: np.ndarray, params: UmapParams = UmapParams(), key: str | None = None
) -> np.ndarray:
    """[N, F] → [N, 2]; `key` (e.g. 'run-id/train') names the cache entry, else a content hash."""
    cache_key = (key or _fingerprint(latents), latents.shape, params)
    with _LOCK:
        if cache_key in _CACHE:
            _CACHE.move_to_end(cache_key)
            return _CACHE[cache_key]
    umap = load_umap()  # heavy import (numba); only when an embedding is really needed
    n_neighbors = max(2, min(params.n_neighbors, len(latents) - 1))
    reducer = umap.UMAP(
        n_neighbors=n_neighbors, min_dist=params.min_dist, random_state=params.seed, n_jobs=1
    )
    embedding = reducer.fit_transform(np.asarray(latents, dtype=np.float32)).astype(np.float32)
    with _LOCK:
        _CACHE[cache_key] = embedding
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return embedding


def load_umap() -> ModuleType:
    """umap-learn, with every numba kernel its import loads (its own and pynndescent's) set
    to numba's on-disk cache (beside the package, else the user's cache folder; keyed by the
    source file, so an upgrade recompiles). umap-learn leaves most of them uncached; the
    results are the same."""
    global _kernels_cached
    with _IMPORT_LOCK:
        import umap

        if not _kernels_cached:
            _cache_kernels()
            _kernels_cached = True
    return umap


def _cache_kernels() -> None:
    from numba.core.registry import CPUDispatcher

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in _KERNEL_PACKAGES:
            for kernel in list(vars(module).values()):
                if isinstance(kernel, CPUDispatcher):
                    kernel.enable_caching()


def warm_up() -> None:
    """Compile (or load from numba's cache) umap's kernels on a tiny random set."""
    umap = load_umap()
    points = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    umap.UMAP(n_neighbors=5, random_state=0, n_jobs=1).fit_transform(points)
