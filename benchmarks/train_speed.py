"""Training-step throughput on this CPU: our LLaMA against `transformers.LlamaForCausalLM`
with the same configuration and weights, eager and compiled, next to the CPU's measured
fp32 matmul rate; and the data loader's delivery rate against what a step consumes.

    .venv/bin/python benchmarks/train_speed.py [--steps 10] [--no-compile]

A step is forward + backward + AdamW on one batch, fp32, all cores. "of matmul" is the
model FLOPs a step does per second (6 per parameter per token, plus attention's two
matmuls) over the measured rate of a large fp32 matmul: the share of the machine's
arithmetic the step turns into training.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from pipelines.shards import ShardReader, shard_schema
from trainer.data import batch_for
from trainer.export import export_hf
from trainer.model import Llama, ModelArgs, count_parameters

ARGS = ModelArgs(dim=256, n_layers=8, n_heads=8, vocab_size=1024, multiple_of=64, max_seq_len=256)
BATCH = 8


def matmul_rate(n: int = 1024, repeat: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * n**3 * repeat / (time.perf_counter() - started)


def step_flops(model_args: ModelArgs, parameters: int) -> int:
    embeddings = model_args.vocab_size * model_args.dim
    tokens = BATCH * model_args.max_seq_len
    attention = 12 * model_args.n_layers * model_args.dim * model_args.max_seq_len
    return (6 * (parameters - embeddings) + attention) * tokens


def time_steps(model: torch.nn.Module, logits_of, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
    tokens = torch.randint(0, ARGS.vocab_size, (BATCH, ARGS.max_seq_len + 1))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def one() -> None:
        logits = logits_of(model, inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm up (and compile)
        one()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        one()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def loader_rate(seconds_per_step: float) -> tuple[float, float]:
    """Tokens/s the shard reader delivers (batches of BATCH rows as int64 tensors)."""
    rows = 4096
    with tempfile.TemporaryDirectory() as tmp:
        import pyarrow as pa

        schema = shard_schema(ARGS.max_seq_len, ARGS.vocab_size)
        data = np.random.default_rng(0).integers(
            0, ARGS.vocab_size, size=(rows, ARGS.max_seq_len + 1), dtype=np.uint16
        )
        column = pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), ARGS.max_seq_len + 1)
        with pa.ipc.new_file(f"{tmp}/shard-00000.arrow", schema) as writer:
            writer.write_table(pa.table({"tokens": column}, schema=schema), max_chunksize=1024)
        reader = ShardReader(tmp)
        started = time.perf_counter()
        batches = 0
        for position in range(0, rows, BATCH):
            batch_for(reader, position, BATCH)
            batches += 1
        elapsed = time.perf_counter() - started
    delivered = batches * BATCH * ARGS.max_seq_len / elapsed
    consumed = BATCH * ARGS.max_seq_len / seconds_per_step
    return delivered, consumed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    rate = matmul_rate()
    ours = Llama(ARGS)
    ours.init_weights()
    parameters = count_parameters(ours)
    with tempfile.TemporaryDirectory() as tmp:
        export_hf(ours.state_dict(), ARGS, tmp)
        theirs = LlamaForCausalLM.from_pretrained(tmp, torch_dtype=torch.float32)
    theirs.config._attn_implementation = "sdpa"
    flops = step_flops(ARGS, parameters)
    tokens = BATCH * ARGS.max_seq_len
    print(
        f"model: dim {ARGS.dim}, {ARGS.n_layers} layers, {ARGS.n_heads} heads, vocabulary "
        f"{ARGS.vocab_size}, {parameters:,} parameters; batch {BATCH} x {ARGS.max_seq_len} "
        f"tokens; {torch.get_num_threads()} threads"
    )
    print(f"measured fp32 matmul rate (1024^3): {rate / 1e9:.1f} GFLOP/s")
    print()
    print("| model | mode | seconds/step | tokens/s | GFLOP/s | of matmul |")
    print("|---|---|---:|---:|---:|---:|")
    runs = [("ours", ours, lambda m, x: m(x)), ("transformers", theirs, lambda m, x: m(x).logits)]
    results = {}
    for name, model, logits_of in runs:
        modes = [("eager", model)]
        if not args.no_compile:
            modes.append(("compiled", torch.compile(model)))
        for mode, runnable in modes:
            seconds = time_steps(runnable, logits_of, args.steps)
            results[(name, mode)] = seconds
            print(
                f"| {name} | {mode} | {seconds:.3f} | {tokens / seconds:,.0f} | "
                f"{flops / seconds / 1e9:.1f} | {flops / seconds / rate:.2f} |",
                flush=True,
            )
    delivered, consumed = loader_rate(results[("ours", "eager")])
    print()
    print(
        f"data loader: {delivered:,.0f} tokens/s delivered vs {consumed:,.0f} consumed by a "
        f"step ({delivered / consumed:.0f}x)"
    )


if __name__ == "__main__":
    main()
