"""`llama-recipe model-info`: exact parameter count, FLOPs per token and the memory a training
step needs per GPU under FSDP, for a model configuration.

Memory model (per GPU, FSDP sharding parameters, gradients and optimizer state over all GPUs):
fp32 master parameters 4 B, fp32 gradients 4 B and AdamW's two moments 8 B per parameter,
divided by the number of GPUs; plus the activations kept for the backward pass, which FSDP
does not shard: per layer and token, 34·d + 5·h·s bytes in bf16 without activation
checkpointing (Korthikanti et al. 2022, "Reducing Activation Recomputation"), and 2·d bytes
(the block's input) with full checkpointing; plus the largest layer gathered unsharded in
bf16 during its forward and backward (twice, for prefetching).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainer.model import Llama, ModelArgs, count_parameters, model_args


@dataclass(frozen=True)
class ModelInfo:
    parameters: int
    non_embedding_parameters: int
    flops_per_token: int  # training: forward + backward
    state_bytes_per_gpu: int
    activation_bytes_per_gpu: int
    gathered_bytes: int

    @property
    def total_bytes_per_gpu(self) -> int:
        return self.state_bytes_per_gpu + self.activation_bytes_per_gpu + self.gathered_bytes


def exact_parameters(args: ModelArgs) -> int:
    """Counted on the meta device: exact, and nothing is allocated even for 65B."""
    with torch.device("meta"):
        return count_parameters(Llama(args))


def model_info(
    args: ModelArgs, gpus: int, batch_per_gpu: int, checkpointing: bool = False
) -> ModelInfo:
    n = exact_parameters(args)
    embeddings = args.vocab_size * args.dim  # the input table does no matmul
    seq = args.max_seq_len
    # 6 FLOPs per parameter per token (2 forward, 4 backward) for every matmul weight, plus
    # attention's scores and weighted sum: 2 matmuls of s x d per token per layer, x3 for
    # forward and backward (causal masking not discounted, as in the usual MFU convention).
    flops = 6 * (n - embeddings) + 12 * args.n_layers * args.dim * seq
    tokens = batch_per_gpu * seq
    per_layer = 2 * args.dim if checkpointing else 34 * args.dim + 5 * args.n_heads * seq
    activations = args.n_layers * tokens * per_layer
    layer_params = (n - 2 * embeddings - args.dim) // args.n_layers
    return ModelInfo(
        parameters=n,
        non_embedding_parameters=n - embeddings,
        flops_per_token=flops,
        state_bytes_per_gpu=16 * n // gpus,
        activation_bytes_per_gpu=activations,
        gathered_bytes=2 * 2 * layer_params,
    )


def render(name: str, info: ModelInfo, args: ModelArgs, gpus: int, batch_per_gpu: int) -> str:
    gib = 1024**3
    return "\n".join(
        [
            f"model: {name} (dim {args.dim}, {args.n_layers} layers, {args.n_heads} heads, "
            f"SwiGLU hidden {args.ffn_hidden}, vocabulary {args.vocab_size}, "
            f"context {args.max_seq_len})",
            f"parameters: {info.parameters}",
            f"non-embedding parameters: {info.non_embedding_parameters}",
            f"training FLOPs per token: {info.flops_per_token:.4g}",
            f"memory per GPU, FSDP over {gpus} GPU(s), {batch_per_gpu} sequence(s) per GPU:",
            f"  parameters + gradients + AdamW (fp32, sharded): "
            f"{info.state_bytes_per_gpu / gib:.2f} GiB",
            "  activations (bf16, no checkpointing): "
            f"{info.activation_bytes_per_gpu / gib:.2f} GiB",
            f"  gathered layers (bf16): {info.gathered_bytes / gib:.2f} GiB",
            f"  total: {info.total_bytes_per_gpu / gib:.2f} GiB",
        ]
    )


def describe(name: str, vocab_size: int, seq_len: int, gpus: int, batch_per_gpu: int) -> str:
    args = model_args(name, vocab_size, seq_len)
    return render(name, model_info(args, gpus, batch_per_gpu), args, gpus, batch_per_gpu)
