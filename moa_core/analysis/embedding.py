"""2-D UMAP embeddings of latent codes, cached per (run, split, parameters).

umap-learn compiles its numba kernels on first use (10+ s); `warm_up()` pays that once at
app start-up so the first click on the Latent page is not the slow one.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_CACHE_SIZE = 32
_LOCK = threading.Lock()


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
    import umap  # heavy import (numba); only when an embedding is really needed

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


def warm_up() -> None:
    """Compile umap's numba kernels on a tiny random set (not cached)."""
    import umap

    points = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    umap.UMAP(n_neighbors=5, random_state=0, n_jobs=1).fit_transform(points)
