"""LLaMA (Touvron et al., 2023): pre-norm RMSNorm, SwiGLU feed-forward, rotary embeddings,
no biases, untied input and output embeddings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelArgs:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    vocab_size: int = 32000
    multiple_of: int = 256  # SwiGLU hidden size is rounded up to a multiple of this
    norm_eps: float = 1e-6
    max_seq_len: int = 2048
    rope_theta: float = 10000.0

    @property
    def ffn_hidden(self) -> int:
        # 2/3 of 4d keeps the parameter count of a 4d two-matrix MLP with three matrices.
        hidden = int(2 * (4 * self.dim) / 3)
        return self.multiple_of * math.ceil(hidden / self.multiple_of)


# Table 2 of the paper, plus small sizes for tests and single-device runs.
CONFIGS: dict[str, dict[str, int]] = {
    "tiny": dict(dim=128, n_layers=2, n_heads=4, multiple_of=32),
    "small": dict(dim=256, n_layers=4, n_heads=8, multiple_of=64),
    "7B": dict(dim=4096, n_layers=32, n_heads=32),
    "13B": dict(dim=5120, n_layers=40, n_heads=40),
    "33B": dict(dim=6656, n_layers=60, n_heads=52),
    "65B": dict(dim=8192, n_layers=80, n_heads=64),
}


def model_args(name: str, vocab_size: int, max_seq_len: int) -> ModelArgs:
    if name not in CONFIGS:
        raise KeyError(f"unknown model {name!r}; one of {', '.join(CONFIGS)}")
    return ModelArgs(**CONFIGS[name], vocab_size=vocab_size, max_seq_len=max_seq_len)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalized in fp32 whatever the activation dtype, as the reference does.
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_table(head_dim: int, seq_len: int, theta: float) -> torch.Tensor:
    """The rotations e^(i·pos·freq) as complex numbers: [seq_len, head_dim // 2]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(torch.arange(seq_len).float(), inv_freq)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs (x0, x1), (x2, x3)... of x: [batch, seq, heads, head_dim].

    Each pair is a complex number multiplied by its position's rotation: one complex product
    (the reference implementation's form), ~10x faster forward and backward on CPU than
    rotating the real and imaginary halves separately."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rope[None, :, None, :]).flatten(-2).type_as(x)


@dataclass
class KVCache:
    """Keys and values of the positions seen so far, per layer: [batch, max_len, heads, hd]."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @classmethod
    def empty(cls, args: ModelArgs, batch: int, max_len: int, device, dtype) -> KVCache:
        shape = (batch, max_len, args.n_heads, args.dim // args.n_heads)
        return cls(
            [torch.zeros(shape, device=device, dtype=dtype) for _ in range(args.n_layers)],
            [torch.zeros(shape, device=device, dtype=dtype) for _ in range(args.n_layers)],
        )


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.dim, bias=False)
        self.wk = nn.Linear(args.dim, args.dim, bias=False)
        self.wv = nn.Linear(args.dim, args.dim, bias=False)
        self.wo = nn.Linear(args.dim, args.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        rope: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, seq, _ = x.shape
        shape = (batch, seq, self.n_heads, self.head_dim)
        q = apply_rope(self.wq(x).view(shape), rope)
        k = apply_rope(self.wk(x).view(shape), rope)
        v = self.wv(x).view(shape)
        if cache is not None:  # generation: attend to every earlier position too
            keys, values = cache
            keys[:, start : start + seq] = k
            values[:, start : start + seq] = v
            k, v = keys[:, : start + seq], values[:, : start + seq]
        # [batch, heads, seq, head_dim] for SDPA
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            is_causal=mask is None,
        )
        return self.wo(out.transpose(1, 2).reshape(batch, seq, -1))


class FeedForward(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.ffn_hidden, bias=False)  # gate
        self.w2 = nn.Linear(args.ffn_hidden, args.dim, bias=False)  # down
        self.w3 = nn.Linear(args.dim, args.ffn_hidden, bias=False)  # up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = Attention(args)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.feed_forward = FeedForward(args)

    def forward(
        self, x: torch.Tensor, rope: torch.Tensor, cache=None, start: int = 0, mask=None
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), rope, cache, start, mask)
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(Block(args) for _ in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        rope = rope_table(args.dim // args.n_heads, args.max_seq_len, args.rope_theta)
        self.register_buffer("rope", rope, persistent=False)

    def init_weights(self, std: float = 0.02) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
        # Residual projections scaled by depth so the residual stream does not grow with it.
        for block in self.layers:
            for proj in (block.attention.wo, block.feed_forward.w2):
                nn.init.normal_(proj.weight, mean=0.0, std=std / math.sqrt(2 * self.args.n_layers))

    def forward(
        self,
        tokens: torch.Tensor,
        cache: KVCache | None = None,
        start: int = 0,
        padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tokens [batch, seq] -> logits [batch, seq, vocab]. With a cache (generation), the
        tokens are at positions start.. and attend to the cached ones before them; `padding`
        [batch, start + seq], True at the pad positions of left-padded rows, hides those from
        every position (rotary embeddings depend on distances only, so a row shifted right
        by its padding gives the logits it gives alone)."""
        seq = tokens.shape[1]
        rope = self.rope[start : start + seq]
        h = self.tok_embeddings(tokens)
        if cache is not None:
            mask = attention_mask(seq, start, padding, tokens.device)
            for i, block in enumerate(self.layers):
                h = block(h, rope, (cache.keys[i], cache.values[i]), start, mask)
            return self.output(self.norm(h)).float()
        for block in self.layers:
            h = block(h, rope)
        return self.output(self.norm(h)).float()


def attention_mask(
    seq: int, start: int, padding: torch.Tensor | None, device
) -> torch.Tensor | None:
    """Which keys each of `seq` queries at positions start.. sees: [seq, start + seq], or
    [batch, 1, seq, start + seq] with padding; None when plain causal attention does."""
    if start == 0 and padding is None:
        return None
    # query i (at position start + i) sees positions <= start + i
    mask = torch.ones(seq, start + seq, dtype=torch.bool, device=device).tril(start)
    if padding is None:
        return mask
    mask = mask & ~padding[:, None, None, : start + seq]
    # A pad query sees itself: one that saw nothing would be NaN, and a NaN value poisons
    # the real queries' outputs even at attention weight zero (0 * NaN is NaN).
    own = (
        torch.arange(start + seq, device=device)
        == torch.arange(start, start + seq, device=device)[:, None]
    )
    return mask | own


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
