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


def hf_state_dict(state: dict[str, torch.Tensor], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Our parameter names and layouts -> Hugging Face Llama's."""
    out = {
        "model.embed_tokens.weight": state["tok_embeddings.weight"],
        "model.norm.weight": state["norm.weight"],
        "lm_head.weight": state["output.weight"],
    }
    for i in range(args.n_layers):
        ours, theirs = f"layers.{i}.", f"model.layers.{i}."
        out[theirs + "self_attn.q_proj.weight"] = permute_for_hf(
            state[ours + "attention.wq.weight"], args.n_heads
        )
        out[theirs + "self_attn.k_proj.weight"] = permute_for_hf(
            state[ours + "attention.wk.weight"], args.n_heads
        )
        out[theirs + "self_attn.v_proj.weight"] = state[ours + "attention.wv.weight"]
        out[theirs + "self_attn.o_proj.weight"] = state[ours + "attention.wo.weight"]
        out[theirs + "mlp.gate_proj.weight"] = state[ours + "feed_forward.w1.weight"]
        out[theirs + "mlp.down_proj.weight"] = state[ours + "feed_forward.w2.weight"]
        out[theirs + "mlp.up_proj.weight"] = state[ours + "feed_forward.w3.weight"]
        out[theirs + "input_layernorm.weight"] = state[ours + "attention_norm.weight"]
        out[theirs + "post_attention_layernorm.weight"] = state[ours + "ffn_norm.weight"]
    return {k: v.detach().to("cpu").contiguous() for k, v in out.items()}


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
