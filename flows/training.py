"""Training a recipe's model on its mix shards: the `train` command and the `train` flow,
which the `llama-recipe.shards.ready` event starts when a build commits new shards."""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import subprocess
import sys
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
from flows.report import artifact_key
from pipelines.errors import UserError
from pipelines.recipe import Recipe, is_uri, load_recipe
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
    shards = os.path.join(recipe.workdir, "mix", "_all")
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
    checkpoint_dir = settings.checkpoint_dir or os.path.join(recipe.workdir, "checkpoints")
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


def step_line(record: dict[str, Any]) -> str:
    """One training step as the `train` command prints it and the train flow logs it."""
    return (
        f"step {record['step']:>5}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  "
        f"grad_norm {record['grad_norm']:.2f}  {record['tokens_per_s']:,.0f} tok/s"
    )


# The `train` command's step and summary lines read back (rank 0 prints them under torchrun).
_STEP_LINE = re.compile(r"step\s+(\d+)\s+loss (\S+)\s+lr (\S+)\s+grad_norm (\S+)\s+([\d,.]+) tok/s")
_CHECKPOINT_LINE = re.compile(r"checkpoint in (.+)$")


def train_under_torchrun(
    recipe_path: str,
    nproc_per_node: int,
    model: str | None,
    max_steps: int | None,
    resume: bool,
    log: Callable[[dict[str, Any]], None],
) -> tuple[list[dict[str, Any]], str | None]:
    """`torchrun --standalone` running the `train` command on this machine, its output
    followed line by line; the logged steps and the checkpoint folder."""
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
    history: list[dict[str, Any]] = []
    checkpoint_dir = None
    tail: collections.deque[str] = collections.deque(maxlen=40)
    errors: list[str] = []
    # torchrun and its ranks end with this flow, however it ends.
    with spawn(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            if line.startswith("llama-recipe: error: "):
                errors.append(line.rstrip().removeprefix("llama-recipe: error: "))
            step = _STEP_LINE.search(line)
            if step:
                record = {
                    "step": int(step[1]),
                    "loss": float(step[2]),
                    "lr": float(step[3]),
                    "grad_norm": float(step[4]),
                    "tokens_per_s": float(step[5].replace(",", "")),
                }
                history.append(record)
                log(record)
            elif done := _CHECKPOINT_LINE.search(line):
                checkpoint_dir = done[1].strip()
    if process.returncode != 0:
        if errors:
            raise UserError(errors[0])
        raise RuntimeError(
            f"torchrun exited with {process.returncode}:\n" + "\n".join(list(tail)[-15:])
        )
    return history, checkpoint_dir


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
    logger = get_run_logger()
    try:
        recipe = load_recipe(recipe_path)
    except UserError as exc:
        return Failed(message=str(exc))
    total = max_steps or recipe.train.max_steps
    progress = create_progress_artifact(
        0.0, key=artifact_key(recipe, "training-progress"), description=f"{recipe.name}: steps done"
    )

    def log(record: dict[str, Any]) -> None:
        logger.info("%s", step_line(record))
        update_progress_artifact(progress, min(100.0, 100.0 * record["step"] / total))

    processes = nproc_per_node or recipe.train.nproc_per_node
    try:
        if processes > 1:
            logger.info("torchrun: %d processes on this machine", processes)
            history, checkpoint_dir = train_under_torchrun(
                recipe_path, processes, model, max_steps, resume, log
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
        f"{history[0]['step']}-{history[-1]['step']}; checkpoint in {checkpoint_dir}"
    )
    create_markdown_artifact(
        f"### {recipe.name}: training\n\n{summary}\n",
        key=artifact_key(recipe, "training"),
        description="training summary",
    )
    return Completed(message=summary, data=history)
