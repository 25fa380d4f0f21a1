"""Export to Hugging Face: transformers' LlamaForCausalLM computes our logits."""

import dataclasses

import pytest
import torch

from trainer.export import export_hf, permute_for_hf
from trainer.model import Llama, ModelArgs


def test_permutation_moves_pairs_to_halves():
    # One head of 4 dims over 1 input: rows (x0, x1, x2, x3) -> (x0, x2, x1, x3).
    weight = torch.arange(4.0).reshape(4, 1)
    assert permute_for_hf(weight, n_heads=1).flatten().tolist() == [0.0, 2.0, 1.0, 3.0]


@pytest.mark.parametrize("n_heads", [4, 2])
def test_transformers_gives_our_logits(tmp_path, n_heads):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    args = ModelArgs(
        dim=64, n_layers=2, n_heads=n_heads, vocab_size=300, multiple_of=32, max_seq_len=64
    )
    model = Llama(args)
    model.init_weights()
    # Norm gains away from 1, so a mapped-wrong norm would show.
    for name, p in model.named_parameters():
        if "norm" in name:
            p.data.uniform_(0.5, 1.5)
    model.eval()
    export_hf(model.state_dict(), args, str(tmp_path))
    theirs = LlamaForCausalLM.from_pretrained(str(tmp_path), torch_dtype=torch.float32).eval()
    assert sum(p.numel() for p in theirs.parameters()) == sum(p.numel() for p in model.parameters())
    tokens = torch.randint(0, args.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(tokens)
        hf = theirs(tokens).logits
    assert torch.allclose(ours, hf, atol=1e-4, rtol=0), (ours - hf).abs().max()
    assert dataclasses.asdict(args)["dim"] == theirs.config.hidden_size


def test_an_export_loads_back_as_our_model(tmp_path):
    """`eval` and `generate` read an export folder too: load_hf undoes the permutation."""
    from trainer.export import load_hf, permute_from_hf

    weight = torch.arange(24.0).reshape(8, 3)
    assert torch.equal(permute_from_hf(permute_for_hf(weight, 2), 2), weight)
    torch.manual_seed(0)
    args = ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=300, multiple_of=32, max_seq_len=64)
    model = Llama(args)
    export_hf(model.state_dict(), args, str(tmp_path))
    state, loaded = load_hf(str(tmp_path))
    assert loaded.ffn_hidden == args.ffn_hidden
    assert dataclasses.replace(loaded, multiple_of=args.multiple_of) == args
    ours = model.state_dict()
    assert state.keys() == ours.keys()
    assert all(torch.equal(state[k], ours[k]) for k in ours)
