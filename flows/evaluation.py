"""The `eval` flow: score the recipe's trained checkpoint on the tasks of its `evaluation`
section (trainer/evaluate.py, docs/eval.md) and publish the results. The `eval/<recipe>`
deployment runs it when a run of `train/<recipe>` completes."""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed, State

from flows.recipe import load_recipe
from flows.report import artifact_key
from flows.training import checkpoint_dir_of
from pipelines.errors import UserError

RESULTS_FILE = "eval-results.json"  # beside the checkpoint
EXAMPLES_FILE = "eval-examples.jsonl"


@flow(name="eval", validate_parameters=False)
def eval_flow(recipe_path: str, checkpoint: str | None = None, device: str = "auto") -> State:
    """Evaluate the recipe's checkpoint.pt (or `checkpoint`: a checkpoint.pt or an export
    folder) on the tasks of its `evaluation` section; a table artifact of accuracy per task,
    and the results and every example's record as files beside the checkpoint."""
    from pipelines.store import StageStore
    from trainer.evaluate import evaluate_checkpoint, results_json, summary, write_results

    logger = get_run_logger()
    try:
        recipe = load_recipe(recipe_path)
        settings = recipe.evaluation
        if settings is None:
            raise UserError(f"{recipe_path}: no `evaluation` section (the tasks to run)")
        path = checkpoint or settings.checkpoint
        path = path or os.path.join(checkpoint_dir_of(recipe), "checkpoint.pt")
        tokenizer = path if os.path.isdir(path) else StageStore(recipe.workdir).tokenizer_dir()
        results, meta = evaluate_checkpoint(
            path, tokenizer, settings, device, say=lambda line: logger.info("%s", line)
        )
    except UserError as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc))
    step = meta.get("step")
    rows = summary(results)
    where = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    out, examples = os.path.join(where, RESULTS_FILE), os.path.join(where, EXAMPLES_FILE)
    write_results(results, path, step, out, examples)
    create_table_artifact(
        rows,
        key=artifact_key(recipe, "evaluation"),
        description=f"**{recipe.name}**: accuracy per task, {_which(path, step)}",
    )
    create_markdown_artifact(
        _markdown(recipe.name, rows, _which(path, step), where),
        key=artifact_key(recipe, "evaluation-report"),
        description="evaluation summary",
    )
    summary_line = ", ".join(f"{r['task']} {r['accuracy']:.4f}" for r in rows)
    data = results_json(results, path, step)
    return Completed(message=f"{_which(path, step)}: {summary_line}", data=data)


def _which(path: str, step: int | None) -> str:
    return f"step {step} ({path})" if step is not None else path


def _markdown(name: str, rows: list[dict[str, Any]], which: str, folder: str) -> str:
    head = "| task | scoring | shots | examples | accuracy | ± stderr | unnormalized |"
    lines = [f"### {name}: evaluation of {which}", "", head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        unnormalized = "" if r["unnormalized"] is None else f"{r['unnormalized']:.4f}"
        lines.append(
            f"| {r['task']} | {r['scoring']} | {r['shots']} | {r['examples']} | "
            f"{r['accuracy']:.4f} | {r['stderr']:.4f} | {unnormalized} |"
        )
    lines += [
        "",
        f"Results and every example's record: {RESULTS_FILE}, {EXAMPLES_FILE} in {folder}",
    ]
    return "\n".join(lines) + "\n"
