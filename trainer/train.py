"""The training loop: AdamW, warmup then cosine decay, gradient clipping, checkpoints.

Data position is the global sequence index, so a run can resume exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipelines.shards import ShardReader
from trainer.config import TrainSettings
from trainer.model import Llama, count_parameters, model_args


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
    rows = [reader[(position + i) % len(reader)] for i in range(batch_size)]
    return torch.from_numpy(np.stack(rows).astype(np.int64))


def train(
    shards_dir: str,
    vocab_size: int,
    settings: TrainSettings,
    checkpoint_dir: str,
    log: Callable[[dict[str, Any]], None] = lambda record: None,
) -> list[dict[str, Any]]:
    """Train from the mix shards; return the per-step metrics and save a final checkpoint."""
    torch.manual_seed(settings.seed)
    device = pick_device(settings.device)
    reader = ShardReader(shards_dir)
    seq_len = reader.row_tokens - 1
    args = model_args(settings.model, vocab_size, seq_len)
    model = Llama(args).to(device)
    model.init_weights()
    # Weight decay on matrices only: norms' gains are not decayed toward zero.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings.lr,
        betas=(settings.beta1, settings.beta2),
    )
    os.makedirs(checkpoint_dir, exist_ok=True)
    metrics_path = os.path.join(checkpoint_dir, "metrics.jsonl")
    history: list[dict[str, Any]] = []
    position = 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    with open(metrics_path, "w") as metrics_file:
        for step in range(settings.max_steps):
            started = time.perf_counter()
            lr = learning_rate(step, settings)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = batch_at(reader, position, settings.batch_size).to(device)
            position += settings.batch_size
            inputs, targets = batch[:, :-1], batch[:, 1:]
            if autocast is not None:
                with autocast:
                    logits = model(inputs)
            else:
                logits = model(inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            seconds = time.perf_counter() - started
            record = {
                "step": step + 1,
                "loss": float(loss.item()),
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens_per_s": settings.batch_size * seq_len / seconds,
                "data_position": position,
            }
            history.append(record)
            metrics_file.write(json.dumps(record) + "\n")
            if step == 0 or (step + 1) % settings.log_every == 0 or step == settings.max_steps - 1:
                log(record)
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": settings.max_steps,
        "data_position": position,
        "model_args": dataclasses.asdict(args),
        "settings": dataclasses.asdict(settings),
        "parameters": count_parameters(model),
    }
    torch.save(checkpoint, os.path.join(checkpoint_dir, "checkpoint.pt"))
    return history


def load_checkpoint(path: str) -> dict[str, Any]:
    """A saved checkpoint, loaded with weights_only (no arbitrary code from the file)."""
    return torch.load(path, map_location="cpu", weights_only=True)
