"""Training a recipe's model on its mix shards: the `train` command and the `train` flow,
which the `llama-recipe.shards.ready` event starts when a build commits new shards."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.states import Completed, Failed, State

from flows.processes import spawn
from flows.recipe import Recipe, load_recipe
from flows.report import artifact_key
from pipelines.errors import UserError
from pipelines.recipe import is_uri
from pipelines.shards import committed_version


def train_recipe(
    recipe: Recipe,
    model: str | None = None,
    max_steps: int | None = None,
    resume: bool = False,
    log: Callable[[dict[str, Any]], None] = lambda record: None,
    verify_shards: bool = True,
    say: Callable[[str], None] = lambda line: None,
) -> tuple[list[dict[str, Any]], str]:
    """Train the recipe's model (or `model`) on its shards; the per-step metrics of this run
    and the checkpoint folder."""
    from trainer.model import CONFIGS
    from trainer.train import train

    if is_uri(recipe.workdir):
        raise UserError(f"workdir {recipe.workdir}: training reads shards from a local folder")
    from pipelines.store import StageStore

    shards = StageStore(recipe.workdir).mix_dir()
    if not os.path.isdir(shards) or committed_version(shards) is None:
        raise UserError(f"{shards}: no mix shards yet; build the recipe first")
    settings = recipe.train
    if not verify_shards:
        settings = dataclasses.replace(settings, verify_shards=False)
    if model is not None:
        if model not in CONFIGS:
            raise UserError(f"unknown model {model!r}; one of {', '.join(CONFIGS)}")
        settings = dataclasses.replace(settings, model=model)
    if max_steps is not None:
        if max_steps < 1:
            raise UserError("max_steps must be a positive number of steps")
        settings = dataclasses.replace(settings, max_steps=max_steps)
    checkpoint_dir = checkpoint_dir_of(recipe)
    try:
        history = train(
            shards,
            recipe.tokenizer.vocab_size,
            settings,
            checkpoint_dir,
            log=log,
            resume=resume,
            say=say,
        )
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    return history, checkpoint_dir


def checkpoint_dir_of(recipe: Recipe) -> str:
    """Where training writes the recipe's checkpoints and metrics.jsonl."""
    return recipe.train.checkpoint_dir or os.path.join(recipe.workdir, "checkpoints")


def step_line(record: dict[str, Any]) -> str:
    """One training step, or one evaluation on the validation shards, as the `train` command
    prints it and the train flow logs it."""
    from trainer.validation import is_validation

    if is_validation(record):
        sources = "  ".join(f"{name} {loss:.4f}" for name, loss in record["validation"].items())
        return (
            f"step {record['step']:>5}  validation loss {record['validation_loss']:.4f}  "
            f"({sources})"
        )
    return (
        f"step {record['step']:>5}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  "
        f"grad_norm {record['grad_norm']:.2f}  {record['tokens_per_s']:,.0f} tok/s"
    )


# How often the train flow reads the steps torchrun's rank 0 appended to metrics.jsonl.
METRICS_POLL_S = 1.0


def train_under_torchrun(
    recipe_path: str,
    recipe: Recipe,
    nproc_per_node: int,
    model: str | None,
    max_steps: int | None,
    resume: bool,
    log: Callable[[dict[str, Any]], None],
) -> tuple[list[dict[str, Any]], str]:
    """`torchrun --standalone` running the `train` command on this machine, its metrics.jsonl
    followed while it runs; the per-step metrics of this run and the checkpoint folder.
    `log` gets the steps the trainer logs (the first, every log_every-th and the last) and
    every evaluation on the validation shards."""
    from trainer.validation import is_validation

    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc_per_node}",
        # Only rank 0's output: every rank prints the summary and any error, and lines from
        # several processes on one pipe can run into each other.
        "--local-ranks-filter=0",
        "-m",
        "flows.cli",
        "train",
        recipe_path,
    ]
    command += ["--model", model] if model else []
    command += ["--max-steps", str(max_steps)] if max_steps else []
    command += ["--resume"] if resume else []
    checkpoint_dir = checkpoint_dir_of(recipe)
    metrics = MetricsFollower(checkpoint_dir, resume)
    last_step = max_steps or recipe.train.max_steps
    history: list[dict[str, Any]] = []

    def follow() -> None:
        for record in metrics.new_records():
            if is_validation(record):
                log(record)
                continue
            history.append(record)
            step = record["step"]
            if len(history) == 1 or step % recipe.train.log_every == 0 or step == last_step:
                log(record)

    # The output goes to a file rather than a pipe: nothing has to drain it while we poll.
    # torchrun and its ranks end with this flow, however it ends.
    with (
        tempfile.TemporaryFile("w+") as output,
        spawn(command, stdout=output, stderr=subprocess.STDOUT) as process,
    ):
        while process.poll() is None:
            follow()
            time.sleep(METRICS_POLL_S)
        follow()  # the steps written since the last look
        output.seek(0)
        lines = output.read().splitlines()
    if process.returncode != 0:
        errors = [
            line.removeprefix("llama-recipe: error: ")
            for line in lines
            if line.startswith("llama-recipe: error: ")
        ]
        if errors:
            raise UserError(errors[0])
        raise RuntimeError(f"torchrun exited with {process.returncode}:\n" + "\n".join(lines[-15:]))
    return history, checkpoint_dir


class MetricsFollower:
    """The records a training run appends to the metrics.jsonl of `checkpoint_dir`, read
    while it runs. What the file held before the run is not this run's: nothing is read
    until the trainer has emptied the file (a new run) or rewritten it with the steps up to
    its checkpoint (a resumed run), and then only the steps after that checkpoint."""

    def __init__(self, checkpoint_dir: str, resume: bool):
        from trainer import checkpoint

        self.path = os.path.join(checkpoint_dir, "metrics.jsonl")
        found = checkpoint.latest(checkpoint_dir) if resume else None
        self.first_step = checkpoint.read_meta(found)["step"] if found else 0
        self.before = _file_identity(self.path)
        self.rewritten = False
        self.offset = 0

    def new_records(self) -> list[dict[str, Any]]:
        """The records of the lines completed since the last call; a last line still being
        written is left for the next."""
        if not self.rewritten:
            now = _file_identity(self.path)
            if now is None or now == self.before:
                return []
            self.rewritten = True
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        records = [json.loads(line) for line in complete.splitlines() if line.strip()]
        return [r for r in records if r["step"] > self.first_step]


def _file_identity(path: str) -> tuple[int, int, int] | None:
    """Inode, modification time and size: any write, truncation or replacement changes it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


@flow(name="train", validate_parameters=False)
def train_flow(
    recipe_path: str,
    model: str | None = None,
    resume: bool = False,
    max_steps: int | None = None,
    nproc_per_node: int | None = None,
) -> State:
    """Train the recipe's model on its mix shards (`model`, `max_steps`, `nproc_per_node`:
    override the recipe's train section; `resume`: continue from the newest checkpoint).
    With more than one process per node the trainer runs under torchrun (FSDP2)."""
    from trainer.validation import is_validation

    logger = get_run_logger()
    try:
        recipe = load_recipe(recipe_path)
    except UserError as exc:
        return Failed(message=str(exc))
    total = max_steps or recipe.train.max_steps
    progress = create_progress_artifact(
        0.0, key=artifact_key(recipe, "training-progress"), description=f"{recipe.name}: steps done"
    )
    evaluations: list[dict[str, Any]] = []

    def log(record: dict[str, Any]) -> None:
        logger.info("%s", step_line(record))
        if is_validation(record):
            evaluations.append(record)
        else:
            update_progress_artifact(progress, min(100.0, 100.0 * record["step"] / total))

    processes = nproc_per_node or recipe.train.nproc_per_node
    try:
        if processes > 1:
            logger.info("torchrun: %d processes on this machine", processes)
            history, checkpoint_dir = train_under_torchrun(
                recipe_path, recipe, processes, model, max_steps, resume, log
            )
        else:
            history, checkpoint_dir = train_recipe(recipe, model, max_steps, resume, log)
    except UserError as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc))
    except RuntimeError as exc:
        logger.error("%s", exc)
        return Failed(message=f"training failed: {str(exc).splitlines()[-1]}")
    update_progress_artifact(progress, 100.0)
    if not history:
        return Completed(message=f"the checkpoint in {checkpoint_dir} is at max_steps")
    every = max(1, len(history) // 50)
    create_table_artifact(
        [
            {k: r[k] for k in ("step", "loss", "lr", "grad_norm", "tokens_per_s")}
            for r in history[::every] + ([history[-1]] if (len(history) - 1) % every else [])
        ],
        key=artifact_key(recipe, "training-loss"),
        description=f"**{recipe.name}**: loss per step",
    )
    summary = (
        f"loss {history[0]['loss']:.4f} -> {history[-1]['loss']:.4f} over steps "
        f"{history[0]['step']}-{history[-1]['step']}"
    )
    details = ""
    if evaluations:
        last = evaluations[-1]
        summary += f"; validation loss {last['validation_loss']:.4f} at step {last['step']}"
        details = publish_validation(recipe, evaluations)
    summary += f"; checkpoint in {checkpoint_dir}"
    create_markdown_artifact(
        f"### {recipe.name}: training\n\n{summary}\n{details}",
        key=artifact_key(recipe, "training"),
        description="training summary",
    )
    return Completed(message=summary, data=history)


def publish_validation(recipe: Recipe, evaluations: list[dict[str, Any]]) -> str:
    """The validation losses of every evaluation as a table artifact (a column per source);
    the last evaluation's per source as Markdown lines for the training summary."""
    sources = list(evaluations[-1]["validation"])
    create_table_artifact(
        [
            {"step": r["step"], "all sources": r["validation_loss"], **r["validation"]}
            for r in evaluations
        ],
        key=artifact_key(recipe, "validation-loss"),
        description=f"**{recipe.name}**: loss on the held-out documents of each source",
    )
    lines = [f"- {name}: {evaluations[-1]['validation'][name]:.4f}" for name in sources]
    return (
        f"\nValidation loss per source at step {evaluations[-1]['step']}:\n\n"
        + "\n".join(lines)
        + "\n"
    )
