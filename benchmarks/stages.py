"""Time every stage of a recipe build (real Beam, no Prefect) and report throughput.

    .venv/bin/python benchmarks/stages.py recipes/sample.yaml [--repeat 3]

Each repetition builds into a fresh temporary workdir, so nothing is cached. Prints one row per
stage: seconds (median over repetitions), documents in, and million characters of text
in per second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from flows.recipe import load_recipe
from pipelines.registry import STAGES
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage

# Whose kept text a stage reads (extract: the text it produced; mix reads tokens, not text).
TEXT_INPUT = {
    "extract": "extract",
    "langid": "extract",
    "train-classifier": "langid",
    "quality": "langid",
    "dedup": "quality",
    "decontaminate": "dedup",
    "train-tokenizer": "decontaminate",
    "tokenize": "decontaminate",
    "mix": None,
}


def build_once(recipe_path: str) -> dict[str, tuple[float, int, int]]:
    recipe = load_recipe(recipe_path)
    with tempfile.TemporaryDirectory() as workdir:
        recipe.workdir = workdir
        ctx = StageContext.from_recipe(recipe)
        timings = {}
        for stage in STAGES:
            started = time.perf_counter()
            results = run_stage(STAGE_CLASSES[stage](), ctx, list(recipe.sources))
            seconds = time.perf_counter() - started
            if all(r.status == "not needed" for r in results):
                continue  # the recipe does not use this stage
            docs = sum(r.manifest.get("counts", {}).get("input", 0) for r in results)
            chars = 0
            if TEXT_INPUT[stage]:
                for source in recipe.sources:
                    manifest = ctx.store.read_manifest(TEXT_INPUT[stage], source) or {}
                    chars += manifest.get("kept_text_chars", 0)
            timings[stage] = (seconds, docs, chars)
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [build_once(args.recipe) for _ in range(args.repeat)]
    print(f"{'stage':<16} {'seconds':>8} {'docs in':>8} {'Mchar/s':>8}")
    total = 0.0
    for stage in STAGES:
        if stage not in runs[0]:
            print(f"{stage:<16} {'(not used by this recipe)':>26}")
            continue
        seconds = statistics.median(run[stage][0] for run in runs)
        _, docs, chars = runs[0][stage]
        total += seconds
        rate = chars / 1e6 / seconds if chars else 0.0
        print(f"{stage:<16} {seconds:>8.2f} {docs:>8} {rate:>8.2f}")
    print(f"{'total':<16} {total:>8.2f}")


if __name__ == "__main__":
    main()
