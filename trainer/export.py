"""Export to a Hugging Face Llama checkpoint: `model.safetensors`, `config.json`,
`generation_config.json` and the tokenizer files, loadable with
`transformers.LlamaForCausalLM.from_pretrained`.

The one transformation is rotary embeddings: this model (like Meta's reference) rotates
consecutive pairs of each head's dimensions, Hugging Face's Llama rotates the first half
against the second. Permuting the rows of wq and wk per head moves each pair's two
components half a head apart, which makes the two computations identical.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import torch

from trainer.model import ModelArgs

TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def permute_for_hf(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of a q/k projection from interleaved-pair order to half-split order, per head."""
    out_dim, in_dim = weight.shape
    head_dim = out_dim // n_heads
    return weight.view(n_heads, head_dim // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def permute_from_hf(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of permute_for_hf: half-split rows back to interleaved pairs, per head."""
    out_dim, in_dim = weight.shape
    head_dim = out_dim // n_heads
    return weight.view(n_heads, 2, head_dim // 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


# Per layer: our parameter, Hugging Face's, and whether its rows are permuted (q and k).
_LAYER_NAMES = (
    ("attention.wq.weight", "self_attn.q_proj.weight", True),
    ("attention.wk.weight", "self_attn.k_proj.weight", True),
    ("attention.wv.weight", "self_attn.v_proj.weight", False),
    ("attention.wo.weight", "self_attn.o_proj.weight", False),
    ("feed_forward.w1.weight", "mlp.gate_proj.weight", False),
    ("feed_forward.w2.weight", "mlp.down_proj.weight", False),
    ("feed_forward.w3.weight", "mlp.up_proj.weight", False),
    ("attention_norm.weight", "input_layernorm.weight", False),
    ("ffn_norm.weight", "post_attention_layernorm.weight", False),
)


def _name_pairs(args: ModelArgs) -> list[tuple[str, str, bool]]:
    pairs = [
        ("tok_embeddings.weight", "model.embed_tokens.weight", False),
        ("norm.weight", "model.norm.weight", False),
        ("output.weight", "lm_head.weight", False),
    ]
    for i in range(args.n_layers):
        for ours, theirs, permuted in _LAYER_NAMES:
            pairs.append((f"layers.{i}.{ours}", f"model.layers.{i}.{theirs}", permuted))
    return pairs


def hf_state_dict(state: dict[str, torch.Tensor], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Our parameter names and layouts -> Hugging Face Llama's."""
    out = {}
    for ours, theirs, permuted in _name_pairs(args):
        weight = state[ours]
        out[theirs] = permute_for_hf(weight, args.n_heads) if permuted else weight
    return {k: v.detach().to("cpu").contiguous() for k, v in out.items()}


def load_hf(folder: str) -> tuple[dict[str, torch.Tensor], ModelArgs]:
    """A folder written by export_hf (or any Llama of the same layout) as our state dict and
    ModelArgs, in float32."""
    from safetensors.torch import load_file

    with open(os.path.join(folder, "config.json")) as fh:
        config = json.load(fh)
    dim, n_heads = config["hidden_size"], config["num_attention_heads"]
    if config.get("num_key_value_heads", n_heads) != n_heads or config.get("tie_word_embeddings"):
        raise ValueError(f"{folder}: grouped-query attention or tied embeddings: not LLaMA's")
    # The hidden size rounds int(8d/3) up to a multiple of multiple_of; the size itself is
    # such a multiple whenever it is not below int(8d/3).
    args = ModelArgs(
        dim=dim,
        n_layers=config["num_hidden_layers"],
        n_heads=n_heads,
        vocab_size=config["vocab_size"],
        multiple_of=config["intermediate_size"],
        norm_eps=config["rms_norm_eps"],
        max_seq_len=config["max_position_embeddings"],
        rope_theta=config.get("rope_theta", 10000.0),
    )
    if args.ffn_hidden != config["intermediate_size"]:
        raise ValueError(f"{folder}: intermediate_size below 8/3 of hidden_size: not LLaMA's")
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    state = {}
    for ours, theirs, permuted in _name_pairs(args):
        weight = tensors[theirs].float()
        state[ours] = permute_from_hf(weight, n_heads) if permuted else weight
    return state, args


def hf_config(args: ModelArgs, dtype: str = "float32") -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.dim,
        "intermediate_size": args.ffn_hidden,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.n_heads,
        "head_dim": args.dim // args.n_heads,
        "hidden_act": "silu",
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "max_position_embeddings": args.max_seq_len,
        "vocab_size": args.vocab_size,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": dtype,
    }


def export_hf(
    state: dict[str, torch.Tensor],
    args: ModelArgs,
    out_dir: str,
    tokenizer_dir: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[str]:
    """Write the Hugging Face checkpoint; return the files written."""
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.to(dtype) for k, v in hf_state_dict(state, args).items()}
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    dtype_name = str(dtype).removeprefix("torch.")
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(hf_config(args, dtype_name), fh, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as fh:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, fh, indent=2)
    written = ["model.safetensors", "config.json", "generation_config.json"]
    if tokenizer_dir:
        for name in TOKENIZER_FILES:
            source = os.path.join(tokenizer_dir, name)
            if os.path.exists(source):
                shutil.copyfile(source, os.path.join(out_dir, name))
                written.append(name)
    return written
