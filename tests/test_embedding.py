"""UMAP's numba kernels go to numba's on-disk cache (`embedding.load_umap`): a process after
the first loads them instead of compiling them (14 s of CPU per process before, for every
app start, test server and `moa` command that draws a latent map)."""

from __future__ import annotations

import json
import subprocess
import sys

EMBED_AND_COUNT = """
import json
import numpy as np
import umap.layouts
from moa_core.analysis.embedding import umap_embedding
umap_embedding(np.random.default_rng(0).normal(size=(100, 5)).astype(np.float32))
stats = umap.layouts._nb_optimize_layout_euclidean_single_epoch.stats
print(json.dumps([sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]))
"""


def _hits_and_misses() -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", EMBED_AND_COUNT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_later_process_loads_umaps_kernels_instead_of_compiling_them() -> None:
    first = _hits_and_misses()  # compiles and saves, unless an earlier process did
    assert sum(first) == 1, first
    assert _hits_and_misses() == [1, 0]
