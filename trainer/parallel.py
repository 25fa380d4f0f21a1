"""How the model is spread and sped up, kept apart from the model's math (as torchtitan does):
the process group under torchrun, FSDP2 (`fully_shard`) per block and on the root, and the
switchable per-block activation checkpointing and `torch.compile`."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
)

from trainer.model import Llama


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device_name: str) -> World:
    """The process group when launched by torchrun (WORLD_SIZE > 1), else a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu" if device_name == "auto" else device_name)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(rank, size, local_rank, device)


def parallelize(
    model: Llama, world: World, compile_blocks: bool = False, checkpointing: str = "none"
) -> Llama:
    """Activation checkpointing, compile and FSDP2, applied per block, in that order; the
    parameter names stay those of the model (checkpoints and exports do not change)."""
    if checkpointing not in ("none", "full", "selective"):
        raise ValueError(
            f"activation_checkpointing: none, full or selective, not {checkpointing!r}"
        )
    if checkpointing != "none":
        apply_activation_checkpointing(model, selective=checkpointing == "selective")
    if compile_blocks:
        for block in model.layers:
            block.compile()  # in place: the module and its parameter names stay
    if world.distributed:
        from torch.distributed.fsdp import fully_shard

        for block in model.layers:
            fully_shard(block)
        fully_shard(model)
    return model


def apply_activation_checkpointing(model: Llama, selective: bool) -> None:
    """Each block recomputes its activations in the backward pass instead of keeping them;
    `selective` keeps what the matmuls and attention produced and recomputes only the cheap
    rest. The block's forward is replaced on the instance, not the block wrapped in a new
    module, so the parameter names stay those of the model."""
    for block in model.layers:
        block.forward = _recomputed_in_backward(block.forward, selective)


def _recomputed_in_backward(forward, selective: bool):
    def checkpointed_forward(*args, **kwargs):
        if not torch.is_grad_enabled():  # no backward pass (evaluation, generation)
            return forward(*args, **kwargs)
        if selective:
            # Named here, not passed in: torch.compile accepts a context_fn it can resolve.
            return checkpoint(
                forward, *args, use_reentrant=False, context_fn=_keep_matmul_outputs, **kwargs
            )
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return checkpointed_forward


def _keep_matmul_outputs():
    return create_selective_checkpoint_contexts(_save_matmuls)


def _save_matmuls(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Keep what the matmuls (and attention) produced, which is expensive to redo; recompute
    norms, activations and rotations, which are cheap."""
    expensive = {
        torch.ops.aten.mm.default,
        torch.ops.aten.addmm.default,
        torch.ops.aten.bmm.default,
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default,
        torch.ops.aten._scaled_dot_product_efficient_attention.default,
        torch.ops.aten._scaled_dot_product_flash_attention.default,
    }
    return CheckpointPolicy.MUST_SAVE if op in expensive else CheckpointPolicy.PREFER_RECOMPUTE
