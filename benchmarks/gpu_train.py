"""Tokens/s and MFU of a training step on one CUDA GPU: a ~1B LLaMA in bf16 autocast,
`torch.compile` per block, SDPA attention, fused AdamW, random tokens.

    python benchmarks/gpu_train.py [--dim 2048 --layers 18 --heads 16] [--batch 8]
        [--seq-len 2048] [--steps 20] [--peak-tflops 989] [--checkpointing]

MFU = model FLOPs per second / the GPU's dense bf16 peak (H100 SXM: 989 TFLOP/s, H200 the
same, A100: 312). Model FLOPs per token = 6 x non-embedding parameters + 12 x layers x dim x
sequence length (attention), the convention of the PaLM paper and torchtitan.
Prints one JSON line with everything measured, to paste into BENCHMARKS.md with the card.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from trainer.model import Llama, ModelArgs, count_parameters
from trainer.parallel import World, parallelize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=18)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--checkpointing", choices=["none", "selective", "full"], default="none")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_train.py: no CUDA device here")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    model_args = ModelArgs(
        dim=args.dim,
        n_layers=args.layers,
        n_heads=args.heads,
        vocab_size=args.vocab_size,
        max_seq_len=args.seq_len,
    )
    model = Llama(model_args)
    model.init_weights()
    parameters = count_parameters(model)
    model = parallelize(
        model.to(device),
        World(0, 1, 0, device),
        compile_blocks=not args.no_compile,
        checkpointing=args.checkpointing,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), fused=True)
    tokens = torch.randint(0, args.vocab_size, (args.batch, args.seq_len + 1), device=device)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    embeddings = args.vocab_size * args.dim
    flops_per_token = 6 * (parameters - embeddings) + 12 * args.layers * args.dim * args.seq_len
    tokens_per_s = args.batch * args.seq_len / seconds
    print(
        json.dumps(
            {
                "gpu": torch.cuda.get_device_name(),
                "parameters": parameters,
                "batch": args.batch,
                "seq_len": args.seq_len,
                "compile": not args.no_compile,
                "checkpointing": args.checkpointing,
                "seconds_per_step": round(seconds, 4),
                "tokens_per_s": round(tokens_per_s),
                "mfu": round(flops_per_token * tokens_per_s / (args.peak_tflops * 1e12), 4),
                "max_memory_gib": round(torch.cuda.max_memory_allocated() / 1024**3, 2),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
