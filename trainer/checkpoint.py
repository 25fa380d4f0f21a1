"""Checkpoints with `torch.distributed.checkpoint` (DCP): every rank writes its own shards of
the model and the optimizer, in parallel, and a checkpoint loads onto any number of ranks.
Beside them, `trainer.json` (step, data position, mix version, settings) and each rank's RNG
state. Loading reads tensors only (DCP's format, and `weights_only` for the RNG states).

A checkpoint is written into `step-N.partial/` and renamed to `step-N/` by rank 0 once every
rank has written its part and trainer.json is on disk: a run killed while writing leaves a
partial folder that `latest()` never picks (and the next save removes)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from pipelines.faults import failpoint

_STEP_RE = re.compile(r"^step-(\d{8})$")
_PARTIAL = ".partial"


def step_dir(root: str, step: int) -> str:
    return os.path.join(root, f"step-{step:08d}")


def latest(root: str) -> str | None:
    """The newest complete checkpoint under root (one whose trainer.json was written)."""
    if not os.path.isdir(root):
        return None
    steps = sorted(
        int(m.group(1))
        for name in os.listdir(root)
        if (m := _STEP_RE.match(name)) and os.path.exists(os.path.join(root, name, "trainer.json"))
    )
    return step_dir(root, steps[-1]) if steps else None


def save(
    root: str,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    meta: dict[str, Any],
    rank: int,
    keep: int,
) -> str:
    """Write a checkpoint into a partial folder, then commit it with one rename."""
    directory = step_dir(root, step)
    partial = directory + _PARTIAL
    if rank == 0 and os.path.exists(partial):
        shutil.rmtree(partial)  # left by a run that died while writing this step
    if dist.is_initialized():
        dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    with _single_process_quiet():
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=partial)
    torch.save({"cpu": torch.get_rng_state()}, os.path.join(partial, f"rng-{rank}.pt"))
    if dist.is_initialized():
        dist.barrier()
    if rank == 0:
        _write_json(os.path.join(partial, "trainer.json"), {**meta, "step": step})
        failpoint("checkpoint:before-commit")
        if os.path.exists(directory):  # the same step again (a rerun after a resume)
            shutil.rmtree(directory)
        os.replace(partial, directory)
        _sync_folder(root)
        _prune(root, keep)
    if dist.is_initialized():
        dist.barrier()
    return directory


def read_meta(directory: str) -> dict[str, Any]:
    """trainer.json of a checkpoint folder."""
    with open(os.path.join(directory, "trainer.json")) as fh:
        return json.load(fh)


def save_whole(state: dict[str, Any], path: str) -> None:
    """torch.save to a temporary file renamed into place: never a half-written file."""
    temporary = path + _PARTIAL
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_whole(path: str) -> dict[str, Any]:
    """A file save_whole wrote, loaded with weights_only (no arbitrary code from the file)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


def _sync_folder(path: str) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(directory: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, rank: int):
    """Restore model, optimizer and RNG in place; return trainer.json's contents."""
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optim_state}
    with _single_process_quiet():
        dcp.load(state, checkpoint_id=directory)
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )
    rng_path = os.path.join(directory, f"rng-{rank}.pt")
    if os.path.exists(rng_path):  # a different world size: ranks beyond the old one reseed
        torch.set_rng_state(torch.load(rng_path, weights_only=True)["cpu"])
    with open(os.path.join(directory, "trainer.json")) as fh:
        return json.load(fh)


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole (unsharded) model state on CPU, on every rank."""
    return get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


@contextlib.contextmanager
def _single_process_quiet():
    """DCP warns that it assumes one process when there is no process group: that is the
    intent of a single-device run."""
    with warnings.catch_warnings():
        if not dist.is_initialized():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _prune(root: str, keep: int) -> None:
    """Keep the newest `keep` checkpoints; drop partial folders of runs that died."""
    names = os.listdir(root)
    steps = sorted(name for name in names if _STEP_RE.match(name))
    partial = [name for name in names if name.endswith(_PARTIAL) and name.startswith("step-")]
    for name in (steps[:-keep] if keep > 0 else []) + partial:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
