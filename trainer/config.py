"""Training settings: the `train` section of a recipe (validated by pydantic in flows/recipe.py).

Plain dataclass with no imports, so the recipe can validate it and the trainer can use it
without either depending on the other's libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainSettings:
    __pydantic_config__ = {"extra": "forbid"}  # a typo'd key in a recipe is an error

    model: str = "tiny"  # a name from trainer.model.CONFIGS
    batch_size: int = 8  # sequences per optimizer step
    lr: float = 3e-4  # LLaMA 7B/13B peak learning rate (Table 2)
    min_lr_ratio: float = 0.1  # LLaMA: cosine decay to 10% of the peak
    warmup_steps: int = 2000  # LLaMA
    max_steps: int = 1000
    weight_decay: float = 0.1  # LLaMA
    beta1: float = 0.9  # LLaMA
    beta2: float = 0.95  # LLaMA
    grad_clip: float = 1.0  # LLaMA
    seed: int = 0
    device: str = "auto"  # cuda when available, else cpu
    log_every: int = 1
    checkpoint_dir: str | None = None  # None: <workdir>/checkpoints
    checkpoint_every: int = 0  # steps between checkpoints; 0: only at the end
    keep_checkpoints: int = 3  # the newest N are kept
    # Steps between evaluations on the mix's validation shards (mixture.validation); the
    # last step is always evaluated. 0: only the last.
    eval_every: int = 0
    # Validation rows evaluated per source (the first of its shards, the same every time);
    # 0: no evaluation. 256 rows of 2048 tokens: 0.5M tokens per source.
    eval_rows: int = 256
    # Sequences per forward/backward on each rank; batch_size / ranks is reached by
    # accumulating gradients. None: the rank's whole share at once.
    micro_batch_size: int | None = None
    compile: bool = False  # torch.compile each block
    # Recompute in the backward pass instead of keeping activations: "full" (each block),
    # "selective" (keep matmul outputs, recompute the cheap elementwise ops), or "none".
    activation_checkpointing: Literal["none", "selective", "full"] = "none"
    # Per device, for MFU; None: the bf16 peak of a GPU we know (H100/H200 989, A100 312).
    peak_tflops: float | None = None
    # Check every shard's sha256 and token ids (in a background thread, before its first
    # read); size, Arrow footer and rows are checked either way.
    verify_shards: bool = True
    # Processes the `train` flow starts with torchrun on its machine (one per GPU); 1 trains in
    # the flow's own process. The command line under torchrun does not read it.
    nproc_per_node: int = 1

    def __post_init__(self) -> None:
        # Counts a recipe could get wrong; the recipe reports the message with its key.
        for name in ("batch_size", "max_steps", "log_every", "keep_checkpoints", "nproc_per_node"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 or more")
        for name in ("warmup_steps", "checkpoint_every", "eval_every", "eval_rows"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ValueError("micro_batch_size must be 1 or more")
