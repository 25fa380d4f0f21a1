"""Text generation with a KV cache: the prompt in one forward pass, then one token at a time,
each step attending to the cached keys and values instead of recomputing the prefix."""

from __future__ import annotations

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
