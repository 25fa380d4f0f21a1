import re

import pytest
import torch

from flows.cli import main
from trainer.model import Llama, ModelArgs

PAPER = {"7B": 6_738_415_616, "13B": 13_015_864_320, "33B": 32_528_943_616, "65B": 65_285_660_672}


@pytest.mark.parametrize("name, parameters", PAPER.items())
def test_model_info_prints_exact_parameters(capsys, name, parameters):
    assert main(["model-info", name, "--gpus", "8"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^parameters: {parameters}$", out, re.MULTILINE)
    flops = float(re.search(r"training FLOPs per token: ([\d.e+]+)", out).group(1))
    assert 6 * parameters * 0.9 < flops < 6 * parameters * 1.3  # ~6N plus attention
    total = float(re.search(r"total: ([\d.]+) GiB", out).group(1))
    assert total > 16 * parameters / 8 / 1024**3  # at least the sharded fp32 state


def test_memory_shrinks_with_more_gpus(capsys):
    main(["model-info", "65B", "--gpus", "64"])
    many = float(re.search(r"AdamW \(fp32, sharded\): ([\d.]+)", capsys.readouterr().out).group(1))
    main(["model-info", "65B", "--gpus", "8"])
    few = float(re.search(r"AdamW \(fp32, sharded\): ([\d.]+)", capsys.readouterr().out).group(1))
    assert few == pytest.approx(8 * many, rel=1e-3)


def test_unknown_model_is_one_line(capsys):
    assert main(["model-info", "70B"]) == 2
    assert capsys.readouterr().err.startswith("llama-recipe: error: unknown model '70B'")


def test_export_command_writes_a_checkpoint_transformers_loads(tmp_path, capsys):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    args = ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=300, multiple_of=32, max_seq_len=64)
    model = Llama(args)
    model.init_weights()
    path = tmp_path / "checkpoints" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save({"model": model.state_dict(), "model_args": args.__dict__}, path)
    out = tmp_path / "hf"
    assert main(["export", str(path), "--hf", str(out)]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    hf = LlamaForCausalLM.from_pretrained(str(out), torch_dtype=torch.float32).eval()
    tokens = torch.arange(20).reshape(1, 20)
    with torch.no_grad():
        assert torch.allclose(model.eval()(tokens), hf(tokens).logits, atol=1e-4)
    assert main(["export", str(tmp_path / "missing.pt"), "--hf", str(out)]) == 2
