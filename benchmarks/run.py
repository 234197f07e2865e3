"""`python -m benchmarks.run [NAME ...]`: run the named benchmarks (all by default)."""

from __future__ import annotations

import sys

from benchmarks import (
    dead_gates,
    em_collapse,
    em_images,
    expert_bank,
    first_figure,
    moa_vs_moa_plus,
    moe_vae_pipeline,
    routing_accuracy,
    synthesis,
    umap_time,
)

BENCHMARKS = {
    "dead_gates": dead_gates.run,
    "em_collapse": em_collapse.run,
    "em_images": em_images.run,
    "expert_bank": expert_bank.run,
    "first_figure": first_figure.run,
    "moa_vs_moa_plus": moa_vs_moa_plus.run,
    "moe_vae_pipeline": moe_vae_pipeline.run,
    "routing_accuracy": routing_accuracy.run,
    "synthesis": synthesis.run,
    "umap_time": umap_time.run,
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    for name in names or list(BENCHMARKS):
        BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
