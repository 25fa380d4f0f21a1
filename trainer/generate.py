"""Text generation with a KV cache: the prompt in one forward pass, then one token at a time,
each step attending to the cached keys and values instead of recomputing the prefix.
`greedy` does the same for a batch of prompts, padded on the left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from trainer.model import KVCache, Llama

EOS_ID = 2


@torch.no_grad()
def generate(
    model: Llama,
    prompt: list[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
) -> list[int]:
    """New token ids after the prompt (greedy at temperature 0), stopping at EOS."""
    model.eval()
    device = next(model.parameters()).device
    limit = min(len(prompt) + max_new_tokens, model.args.max_seq_len)
    cache = KVCache.empty(model.args, 1, limit, device, next(model.parameters()).dtype)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    tokens = torch.tensor([prompt], device=device)
    logits = model(tokens, cache, 0)[:, -1]
    out: list[int] = []
    position = len(prompt)
    while position < limit:
        token = _pick(logits[0], temperature, top_p, generator)
        out.append(token)
        if token == EOS_ID or position + 1 >= limit:
            break
        logits = model(torch.tensor([[token]], device=device), cache, position)[:, -1]
        position += 1
    return out


def _pick(logits: torch.Tensor, temperature: float, top_p: float, generator) -> int:
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(0) - sorted_probs < top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
        probs /= probs.sum()
    return int(torch.multinomial(probs, 1, generator=generator))


def left_padded(rows: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows of different lengths as one [batch, longest] tensor, padded on the left
    (so that every row's last token is the last column), and its padding mask (True at
    the pads)."""
    longest = max(len(row) for row in rows)
    tokens = torch.zeros(len(rows), longest, dtype=torch.long)
    padding = torch.ones(len(rows), longest, dtype=torch.bool)
    for i, row in enumerate(rows):
        tokens[i, longest - len(row) :] = torch.tensor(row, dtype=torch.long)
        padding[i, longest - len(row) :] = False
    return tokens.to(device), padding.to(device)


def _ends_at_eos(new: list[int]) -> bool:
    return new[-1] == EOS_ID


@torch.no_grad()
def greedy(
    model: Llama,
    prompts: list[list[int]],
    max_new_tokens: int,
    finished: Callable[[list[int]], bool] = _ends_at_eos,
) -> list[list[int]]:
    """The greedy continuation of each prompt, the prompts in one batch: left-padded, their
    tokens in one forward pass into the KV cache, then one token per step for every row.
    A row's continuation ends with the first token after which `finished(its tokens)` holds
    (EOS by default), or after max_new_tokens, or where the context is full."""
    device = next(model.parameters()).device
    longest = max(len(p) for p in prompts)
    steps = min(max_new_tokens, model.args.max_seq_len - longest)
    if steps <= 0:
        return [[] for _ in prompts]
    tokens, padding = left_padded(prompts, device)
    dtype = next(model.parameters()).dtype
    cache = KVCache.empty(model.args, len(prompts), longest + steps, device, dtype)
    padding = torch.cat([padding, padding.new_zeros(len(prompts), steps)], dim=1)
    logits = model(tokens, cache, 0, padding[:, :longest])[:, -1]
    out: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for step in range(steps):
        chosen = logits.argmax(dim=-1)
        for row, token in enumerate(chosen.tolist()):
            if not done[row]:
                out[row].append(token)
                done[row] = finished(out[row])
        if all(done) or step + 1 == steps:
            break
        position = longest + step
        logits = model(chosen[:, None], cache, position, padding[:, : position + 1])[:, -1]
    return out


class Decoder(Protocol):
    def decode(self, ids: list[int]) -> str: ...


def continuation(tokenizer: Decoder, prompt: list[int], new: list[int]) -> str:
    """The text `new` adds after `prompt`. Decoded together: SentencePiece drops the leading
    space of the first piece it decodes, so "▁is" decoded alone after "The river" would give
    "The riveris"."""
    before = tokenizer.decode(prompt)
    whole = tokenizer.decode(prompt + new)
    return whole[len(before) :] if whole.startswith(before) else tokenizer.decode(new)
