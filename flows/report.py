"""Tables for people: the stage x source counts and the mixture, from the manifests alone."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from pipelines.recipe import Recipe
from pipelines.registry import PER_SOURCE_STAGES, STAGES, spec
from pipelines.store import ALL_SOURCES, PASSTHROUGH, StageStore


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
            if manifest.get(PASSTHROUGH):
                top = f"passed {manifest[PASSTHROUGH]}'s documents through"
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
    rows = mixture_rows(recipe)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "source" else "right")
    for row in rows:
        table.add_row(
            row["source"],
            *(
                f"{value:,}" if isinstance(value, int) else f"{value:.2f}"
                for value in list(row.values())[1:]
            ),
        )
    return table


def decontamination_rows(recipe: Recipe) -> list[dict[str, Any]]:
    """Per evaluation task: its examples, those too short to check, and in each source the
    examples found and the documents removed (from decontaminate's manifests); none when
    the recipe has no evaluation sets or the stage has not run."""
    store = StageStore(recipe.workdir)
    manifests = {s: store.read_manifest("decontaminate", s) or {} for s in recipe.sources}
    rows: dict[str, dict[str, Any]] = {}
    found_anywhere: dict[str, set[str]] = {}
    for source, manifest in manifests.items():
        for task, counts in manifest.get("decontamination", {}).items():
            row = rows.setdefault(
                task,
                {
                    "task": task,
                    "examples": counts["examples"],
                    "too short to check": counts["too_short"],
                    "found in any source": 0,
                    **{f"{name}: found / removed": "not run" for name in recipe.sources},
                },
            )
            found_anywhere.setdefault(task, set()).update(counts["found"])
            row[f"{source}: found / removed"] = (
                f"{counts['examples_found']} examples / {counts['documents_removed']} documents"
            )
    for task, row in rows.items():
        row["found in any source"] = len(found_anywhere[task])
    return list(rows.values())


def decontamination_table(recipe: Recipe) -> Table | None:
    rows = decontamination_rows(recipe)
    if not rows:
        return None
    table = Table(title="decontamination: evaluation examples found in the training data")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "task" else "right")
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    return table


def input_warnings(recipe: Recipe) -> list[str]:
    """One line per damaged or empty input file recorded by extract."""
    store = StageStore(recipe.workdir)
    lines = []
    for source in recipe.sources:
        manifest = store.read_manifest("extract", source) or {}
        for problem in manifest.get("file_problems", []):
            kept = (
                "the records around it were kept"
                if problem["reason"] == "extract:damaged_record"
                else "what came before the damage was kept"
            )
            lines.append(printable(f"{source}: {problem['detail']} ({problem['reason']}; {kept})"))
    return lines


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (a file name may hold an escape
    sequence) written as escapes."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def print_report(recipe: Recipe, console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 110))
    console.print(status_table(recipe))
    for table in (decontamination_table(recipe), mixture_table(recipe)):
        if table is not None:
            console.print(table)


# The same facts as rows and Markdown, for Prefect artifacts and the report file beside the data.


def artifact_key(recipe: Recipe, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for one of a recipe's tables."""
    return f"{recipe.name}-{what}".replace("_", "-")  # recipe names are already lowercase


def _reasons(manifest: dict[str, Any]) -> str:
    reasons = sorted(manifest.get("rejected_by_reason", {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{reason}: {n}" for reason, n in reasons)


def _input_chars(store: StageStore, stage: str, source: str, manifest: dict[str, Any]) -> int:
    """The text a stage read: its upstream's kept text (extract: the text it extracted)."""
    upstream = spec(stage).upstream
    before = store.read_manifest(upstream, source) if upstream else None
    return int((before or manifest).get("kept_text_chars", 0))


def stage_rows(recipe: Recipe, stage: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source: documents in, kept, rejected by reason, tokens, seconds and MB/s.

    A stage runs every source that needs it in one Beam pipeline: the seconds and MB/s of the
    sources that ran are those of that pipeline (all its input over its time); a cached
    source shows the seconds of the run that made it."""
    store = StageStore(recipe.workdir)
    chars = {
        r["source"]: _input_chars(store, stage, r["source"], r["manifest"]) if r["manifest"] else 0
        for r in results
    }
    ran = [r for r in results if r["status"] == "ran"]
    ran_chars = sum(chars[r["source"]] for r in ran)
    rows = []
    for r in results:
        manifest = r["manifest"]
        counts = manifest.get("counts", {})
        seconds = manifest.get("pipeline_seconds")
        tokens = manifest.get("tokens")
        if stage == "mix" and manifest:
            tokens = manifest["mixture"]["total_tokens_packed"]
        throughput = ""
        if r["status"] == "ran" and seconds and ran_chars:
            throughput = round(ran_chars / 1e6 / seconds, 3)
        status = {"ran": "ran", "skipped": "cached"}.get(r["status"], r["status"])
        if manifest.get(PASSTHROUGH):
            status += f" (passed {manifest[PASSTHROUGH]}'s documents through)"
        rows.append(
            {
                "source": "(all)" if r["source"] == ALL_SOURCES else r["source"],
                "status": status,
                "documents in": counts.get("input", ""),
                "kept": counts.get("kept", ""),
                "rejected": counts.get("rejected", ""),
                "rejected by reason": _reasons(manifest),
                "tokens": "" if tokens is None else tokens,
                "MB of text in": round(chars[r["source"]] / 1e6, 3) if chars[r["source"]] else "",
                "seconds": "" if seconds is None else seconds,
                "MB/s": throughput,
            }
        )
    return rows


def mixture_rows(recipe: Recipe) -> list[dict[str, Any]]:
    """Target against actual proportion per source, from the committed mix."""
    manifest = StageStore(recipe.workdir).read_manifest("mix", ALL_SOURCES)
    if manifest is None:
        return []
    held_out = manifest["mixture"].get("validation")
    rows = []
    for name, s in manifest["mixture"]["sources"].items():
        row = {
            "source": name,
            "target %": round(100 * s["target_proportion"], 3),
            "actual %": round(100 * s["actual_proportion"], 3),
            "target tokens": s["target_tokens"],
            "actual tokens": s["actual_tokens"],
            "available tokens": s["available_tokens"],  # for training: held-out excluded
            "epochs": round(s["epochs"], 3),
        }
        if held_out is not None:  # the validation documents, apart from the training shards
            held = held_out.get(name, {})
            row["held-out documents"] = held.get("documents", 0)
            row["held-out tokens"] = held.get("tokens", 0)
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


def report_markdown(recipe: Recipe) -> str:
    """The data report: every stage's counts per source, the evaluation examples found in
    the data, then the mixture."""
    store = StageStore(recipe.workdir)
    parts = [f"# {recipe.name}: data report", "", f"Workdir: `{recipe.workdir}`", ""]
    for stage in STAGES:
        targets = list(recipe.sources) if stage in PER_SOURCE_STAGES else [ALL_SOURCES]
        results = []
        for source in targets:
            manifest = store.read_manifest(stage, source)
            if manifest is not None:
                results.append({"source": source, "status": "done", "manifest": manifest})
        parts += [f"## {stage}", ""]
        if not results:
            parts += ["not run", ""]
            continue
        rows = stage_rows(recipe, stage, results)
        for row in rows:
            row.pop("status")
        parts += [markdown_table(rows), ""]
    decontamination = decontamination_rows(recipe)
    if decontamination:
        parts += ["## decontamination", "", markdown_table(decontamination), ""]
    elif recipe.decontamination is None:
        note = "No `decontamination` section: the data was not checked against evaluation sets."
        parts += ["## decontamination", "", note, ""]
    mixture = mixture_rows(recipe)
    if mixture:
        parts += ["## mixture", "", markdown_table(mixture), ""]
    return "\n".join(parts)
