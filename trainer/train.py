"""The training loop: AdamW, warmup then cosine decay, gradient clipping, checkpoints.

Data position is the global sequence index, so a run can resume exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from pipelines.shards import ShardReader, committed_version, validation_readers
from pipelines.shards import shards_dir as shards_dir_of
from trainer import checkpoint
from trainer.config import TrainSettings
from trainer.data import batch_for, rank_slice
from trainer.model import Llama, count_parameters, model_args
from trainer.parallel import init_world, parallelize
from trainer.validation import is_validation, validation_losses, validation_record


def learning_rate(step: int, settings: TrainSettings) -> float:
    """Linear warmup to the peak, then cosine decay to min_lr_ratio of it at max_steps."""
    peak = settings.lr
    warmup = min(settings.warmup_steps, max(settings.max_steps - 1, 0))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, settings.max_steps - warmup)
    floor = peak * settings.min_lr_ratio
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(progress, 1.0)))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batch_at(reader: ShardReader, position: int, batch_size: int) -> torch.Tensor:
    """Sequences position..position+batch_size-1 (wrapping around the data), as int64."""
    return batch_for(reader, position, batch_size)


# Dense bf16 peaks (TFLOP/s, no sparsity) of the GPUs MFU is usually quoted for.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def known_peak_tflops(device: torch.device) -> float | None:
    """The device's peak when it is a GPU we know (else MFU needs train.peak_tflops)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def build_optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    # Weight decay on matrices only: norms' gains are not decayed toward zero.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings.lr,
        betas=(settings.beta1, settings.beta2),
        fused=torch.cuda.is_available() or None,
    )


def train(
    shards_dir: str,
    vocab_size: int,
    settings: TrainSettings,
    checkpoint_dir: str,
    log: Callable[[dict[str, Any]], None] = lambda record: None,
    resume: bool = False,
    stop_after: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> list[dict[str, Any]]:
    """Train from the mix shards (on every rank when launched by torchrun); return the
    per-step metrics of this run and leave checkpoints in `checkpoint_dir`. `shards_dir` is
    the mix stage's folder (its committed version is read; a resumed run reads the version
    it started on) or a folder of shards. `stop_after` ends the run after that step with a
    checkpoint, as a preempted job would end. When the version has validation shards, the
    model is evaluated on them every `eval_every` steps and after the last; those records
    go to `log` and metrics.jsonl, not into the returned steps."""
    world = init_world(settings.device)
    torch.manual_seed(settings.seed)
    found = checkpoint.latest(checkpoint_dir) if resume else None
    if resume and found is None:
        raise FileNotFoundError(f"{checkpoint_dir}: no checkpoint to resume from")
    trained_on = checkpoint.read_meta(found).get("mix_version") if found else None
    directory, version = shards_dir_of(shards_dir, trained_on)
    newest = committed_version(shards_dir)
    if trained_on and newest and newest != trained_on and world.main:
        say(f"resuming on mix version {trained_on}, the one this run started on (newest: {newest})")
    reader = ShardReader(directory, vocab_size=vocab_size, verify=settings.verify_shards)
    held_out = validation_readers(directory, vocab_size, settings.verify_shards)
    if not settings.eval_rows:
        held_out = {}
    seq_len = reader.row_tokens - 1
    args = model_args(settings.model, vocab_size, seq_len)
    model = Llama(args)
    model.init_weights()  # the same weights on every rank: the same seed
    parameters = count_parameters(model)
    model = parallelize(
        model.to(world.device), world, settings.compile, settings.activation_checkpointing
    )
    optimizer = build_optimizer(model, settings)
    os.makedirs(checkpoint_dir, exist_ok=True)
    first_step, position = 0, 0
    if found is not None:
        meta = checkpoint.load(found, model, optimizer, world.rank)
        first_step, position = meta["step"], meta["data_position"]
    offset, count = rank_slice(settings.batch_size, world.rank, world.size)
    micro = settings.micro_batch_size or count
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if world.device.type == "cuda" else None
    flops_per_token = 6 * parameters + 12 * args.n_layers * args.dim * seq_len
    peak_tflops = settings.peak_tflops or known_peak_tflops(world.device)
    meta = {
        "model_args": dataclasses.asdict(args),
        "settings": dataclasses.asdict(settings),
        "parameters": parameters,
        "world_size": world.size,
        "mix_version": version,
    }
    history: list[dict[str, Any]] = []
    metrics_path = os.path.join(checkpoint_dir, "metrics.jsonl")
    if world.main and resume:
        # Steps after the checkpoint were logged by the run that died; they run again.
        keep_metrics_until(metrics_path, first_step)
    metrics_file = open(metrics_path, "a" if resume else "w") if world.main else None  # noqa: SIM115
    board = None
    if world.main:
        from torch.utils.tensorboard import SummaryWriter

        board = SummaryWriter(os.path.join(checkpoint_dir, "tensorboard"), purge_step=first_step)
    try:
        for step in range(first_step, settings.max_steps):
            started = time.perf_counter()
            lr = learning_rate(step, settings)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = batch_for(reader, position, settings.batch_size, world.rank, world.size)
            batch = batch.to(world.device)
            position += settings.batch_size
            optimizer.zero_grad(set_to_none=True)
            loss_sum = torch.zeros((), device=world.device)
            for start in range(0, count, micro):
                part = batch[start : start + micro]
                inputs, targets = part[:, :-1], part[:, 1:]
                if autocast is not None:
                    with autocast:
                        logits = model(inputs)
                else:
                    logits = model(inputs)
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
                (loss * len(part) / count).backward()
                loss_sum += loss.detach() * len(part)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            if hasattr(grad_norm, "full_tensor"):
                grad_norm = grad_norm.full_tensor()
            optimizer.step()
            if world.distributed:
                dist.all_reduce(loss_sum)
            step_loss = float(loss_sum) / settings.batch_size
            seconds = time.perf_counter() - started
            tokens_per_s = settings.batch_size * seq_len / seconds
            record = {
                "step": step + 1,
                "loss": step_loss,
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens_per_s": tokens_per_s,
                "data_position": position,
            }
            if peak_tflops:
                record["mfu"] = flops_per_token * tokens_per_s / (peak_tflops * 1e12 * world.size)
            if world.device.type == "cuda":
                record["max_memory_gib"] = torch.cuda.max_memory_allocated() / 1024**3
            else:  # peak resident memory of this process (Linux reports KiB)
                record["max_memory_gib"] = (
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
                )
            history.append(record)
            if metrics_file is not None:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
            if board is not None:
                for key, value in record.items():
                    if key not in ("step", "data_position"):
                        board.add_scalar(f"train/{key}", value, step + 1)
            last = step == settings.max_steps - 1
            if world.main and (step == first_step or (step + 1) % settings.log_every == 0 or last):
                log(record)
            evaluate = last or (settings.eval_every and (step + 1) % settings.eval_every == 0)
            if held_out and evaluate:  # before the checkpoint: a resumed run has its record
                losses = validation_losses(
                    model, held_out, settings.eval_rows, micro, world, autocast
                )
                evaluation = validation_record(step + 1, losses)
                if metrics_file is not None:
                    metrics_file.write(json.dumps(evaluation) + "\n")
                    metrics_file.flush()
                if board is not None:  # (a source's name never starts with "_")
                    board.add_scalar("validation/_overall", evaluation["validation_loss"], step + 1)
                    for name, value in evaluation["validation"].items():
                        board.add_scalar(f"validation/{name}", value, step + 1)
                if world.main:
                    log(evaluation)
            every = settings.checkpoint_every
            stopping = stop_after is not None and step + 1 >= stop_after
            if last or stopping or (every and (step + 1) % every == 0):
                checkpoint.save(
                    checkpoint_dir,
                    step + 1,
                    model,
                    optimizer,
                    {**meta, "data_position": position},
                    world.rank,
                    settings.keep_checkpoints,
                )
            if stopping:
                break
    finally:
        if metrics_file is not None:
            metrics_file.close()
        if board is not None:
            board.close()
    if world.main:
        plot_loss(metrics_path, os.path.join(checkpoint_dir, "loss.png"))
    # The whole model in one file, for `llama-recipe export`.
    state = checkpoint.full_model_state(model)
    if world.main:
        checkpoint.save_whole(
            {**meta, "model": state, "step": settings.max_steps, "data_position": position},
            os.path.join(checkpoint_dir, "checkpoint.pt"),
        )
    if world.distributed:
        # Every rank done before any leaves: a rank exiting while another still talks to it
        # over gloo aborts the job.
        dist.barrier()
        dist.destroy_process_group()
    return history


def keep_metrics_until(metrics_path: str, step: int) -> None:
    """Rewrite metrics.jsonl with the records (training and validation) of steps up to
    `step` only."""
    if not os.path.exists(metrics_path):
        return
    with open(metrics_path) as fh:
        lines = [line for line in fh if line.strip()]
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError):
            break  # a line cut short by the crash, and nothing after it
    temporary = metrics_path + ".tmp"
    with open(temporary, "w") as fh:
        fh.writelines(kept)
    os.replace(temporary, metrics_path)


def plot_loss(metrics_path: str, out: str) -> None:
    """The training loss of every step in metrics.jsonl (resumed runs included) and the
    validation loss of every evaluation, per source and overall, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    with open(metrics_path) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    steps = [r for r in records if not is_validation(r)]
    evaluations = [r for r in records if is_validation(r)]
    if not steps:
        return
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    axis.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=1.2, label="training")
    if evaluations:
        at = [r["step"] for r in evaluations]
        overall = [r["validation_loss"] for r in evaluations]
        axis.plot(at, overall, "k--o", ms=3, label="validation, all sources")
        for name in sorted({name for r in evaluations for name in r["validation"]}):
            curve = [r["validation"].get(name, math.nan) for r in evaluations]
            axis.plot(at, curve, marker=".", lw=0.8, alpha=0.7, label=f"validation: {name}")
        axis.legend(fontsize=7)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
