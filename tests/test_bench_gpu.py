"""`make bench-gpu SMOKE=1`: the GPU task's script runs every case end to end on this CPU
(tiny settings) and prints one JSON line per case, as CI runs it."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.gpu import CASES, main


@pytest.mark.slow
def test_the_smoke_run_prints_one_line_per_case_without_skipping(
    capsys: pytest.CaptureFixture,
) -> None:
    threads = torch.get_num_threads()
    try:
        main(["--smoke"])  # in this process: `python -m benchmarks.gpu --smoke` runs just this
    finally:  # HDBSCAN's thread-pool limits may hand torch back another count
        torch.set_num_threads(threads)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["name"] for line in lines] == [f"gpu_{name}" for name in CASES]
    assert all(line["smoke"] and "skipped" not in line for line in lines)
    by_name = {line["name"]: line for line in lines}
    assert by_name["gpu_moa_plus_epoch"]["seconds_per_epoch"] > 0
    assert by_name["gpu_moe_vae_pipeline"]["k_found"] >= 1
    assert 0 <= by_name["gpu_routing"]["multipath_cc"]["accuracy"] <= 1
    families = by_name["gpu_precision"]["families"]
    assert set(families) == {"moa_plus", "neural_em", "dmvae", "multipath_cc", "moe_vae"}
    assert all(set(modes) == {"fp32", "bf16"} for modes in families.values())  # no compile on CPU
    assert all(mode["seconds"] > 0 for modes in families.values() for mode in modes.values())
