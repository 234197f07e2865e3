"""`python -m benchmarks.run [NAME ...] [--OPTION ...]`: run the named benchmarks (all by
default). Options after one name go to that benchmark's `main(argv)`, e.g.
`python -m benchmarks.run classroom --sessions 16`."""

from __future__ import annotations

import sys
from types import ModuleType

from benchmarks import (
    classroom,
    dead_gates,
    dvmoe_table1,
    em_collapse,
    em_images,
    expert_bank,
    first_figure,
    lesson_cards,
    moa_vs_moa_plus,
    moe_vae_pipeline,
    routing_accuracy,
    synthesis,
    trainer_fast_path,
    umap_time,
    vade_vs_dmvae,
)

# name → module: each keeps `run()` with its defaults; one that takes options also has
# `main(argv)`.
BENCHMARKS: dict[str, ModuleType] = {
    "classroom": classroom,
    "dead_gates": dead_gates,
    "dvmoe_table1": dvmoe_table1,
    "em_collapse": em_collapse,
    "em_images": em_images,
    "expert_bank": expert_bank,
    "first_figure": first_figure,
    "lesson_cards": lesson_cards,
    "moa_vs_moa_plus": moa_vs_moa_plus,
    "moe_vae_pipeline": moe_vae_pipeline,
    "routing_accuracy": routing_accuracy,
    "synthesis": synthesis,
    "trainer_fast_path": trainer_fast_path,
    "umap_time": umap_time,
    "vade_vs_dmvae": vade_vs_dmvae,
}


def main(argv: list[str]) -> int:
    split = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    names, options = argv[:split], argv[split:]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    if options:
        if len(names) != 1:
            print("options go to one benchmark: NAME --OPTION ...", file=sys.stderr)
            return 2
        module = BENCHMARKS[names[0]]
        if not hasattr(module, "main"):
            print(
                f"{names[0]} takes no options here; try `python -m {module.__name__} --help`",
                file=sys.stderr,
            )
            return 2
        module.main(options)
        return 0
    for name in names or list(BENCHMARKS):
        BENCHMARKS[name].run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
