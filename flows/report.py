"""Tables for people: the stage x source counts and the mixture, from the manifests alone."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipelines.recipe import STAGES, Recipe
from pipelines.store import ALL_SOURCES, StageStore


def status_table(recipe: Recipe) -> Table:
    """One row per stage and source: documents in, kept, rejected, and the main reasons."""
    store = StageStore(recipe.workdir)
    table = Table(title=f"{recipe.name}: documents per stage and source")
    for column in ("stage", "source", "in", "kept", "rejected", "top rejection reasons"):
        table.add_column(
            column, justify="right" if column in ("in", "kept", "rejected") else "left"
        )
    for stage in STAGES:
        if stage in ("train-classifier", "train-tokenizer", "mix"):
            manifest = store.read_manifest(stage, ALL_SOURCES)
            note = "done" if manifest else "not run"
            if stage == "train-classifier":
                if not recipe.classifier_needed():
                    note = "not needed"
                elif manifest:
                    m = manifest["metrics"]
                    note = (
                        f"held-out AUC {m['auc']}, precision {m['precision']}, recall {m['recall']}"
                    )
            table.add_row(stage, "(all)", "", "", "", note, end_section=True)
            continue
        for i, source in enumerate(recipe.sources):
            manifest = store.read_manifest(stage, source)
            last = i == len(recipe.sources) - 1
            if manifest is None:
                table.add_row(stage, source, "-", "-", "-", "not run", end_section=last)
                continue
            c = manifest["counts"]
            reasons = sorted(manifest.get("rejected_by_reason", {}).items(), key=lambda kv: -kv[1])
            top = ", ".join(f"{k.split(':', 1)[-1]} {v}" for k, v in reasons[:2])
            table.add_row(
                stage,
                source,
                str(c["input"]),
                str(c["kept"]),
                str(c["rejected"]),
                top,
                end_section=last,
            )
    return table


def mixture_table(recipe: Recipe) -> Table | None:
    manifest = StageStore(recipe.workdir).read_manifest("mix", ALL_SOURCES)
    if manifest is None:
        return None
    mixture = manifest["mixture"]
    table = Table(
        title=(
            f"mixture: {mixture['total_tokens_packed']:,} tokens in {mixture['rows']:,} "
            f"sequences of {mixture['row_tokens']} tokens, {len(mixture['shards'])} shards"
        )
    )
    for column in (
        "source",
        "available tokens",
        "target tokens",
        "actual tokens",
        "target %",
        "actual %",
        "epochs",
    ):
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, s in mixture["sources"].items():
        table.add_row(
            name,
            f"{s['available_tokens']:,}",
            f"{s['target_tokens']:,}",
            f"{s['actual_tokens']:,}",
            f"{100 * s['target_proportion']:.2f}",
            f"{100 * s['actual_proportion']:.2f}",
            f"{s['epochs']:.2f}",
        )
    return table


def input_warnings(recipe: Recipe) -> list[str]:
    """One line per damaged or empty input file recorded by extract."""
    store = StageStore(recipe.workdir)
    lines = []
    for source in recipe.sources:
        manifest = store.read_manifest("extract", source) or {}
        for problem in manifest.get("file_problems", []):
            lines.append(
                f"{source}: {problem['detail']} ({problem['reason']}; what came "
                "before the damage was kept)"
            )
    return lines


def print_report(recipe: Recipe, console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 110))
    console.print(status_table(recipe))
    mixture = mixture_table(recipe)
    if mixture is not None:
        console.print(mixture)
