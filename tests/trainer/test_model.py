import pytest
import torch
import torch.nn.functional as F

from trainer.config import TrainSettings
from trainer.model import CONFIGS, Llama, ModelArgs, RMSNorm, count_parameters, model_args
from trainer.train import learning_rate

PAPER_PARAMETERS = {
    "7B": 6_738_415_616,
    "13B": 13_015_864_320,
    "33B": 32_528_943_616,
    "65B": 65_285_660_672,
}


@pytest.mark.parametrize("name", PAPER_PARAMETERS)
def test_exact_parameter_counts_on_meta_device(name):
    with torch.device("meta"):
        model = Llama(model_args(name, 32000, 2048))
    assert count_parameters(model) == PAPER_PARAMETERS[name]


def test_swiglu_hidden_size_rule():
    assert ModelArgs(dim=4096).ffn_hidden == 11008  # LLaMA 7B
    assert ModelArgs(dim=8192).ffn_hidden == 22016  # LLaMA 65B


def test_no_biases_and_untied_embeddings():
    model = Llama(model_args("tiny", 300, 16))
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    assert model.tok_embeddings.weight.data_ptr() != model.output.weight.data_ptr()


def test_rmsnorm_normalizes_in_fp32():
    norm = RMSNorm(8, 1e-6).to(torch.bfloat16)
    x = torch.randn(2, 8, dtype=torch.bfloat16) * 100
    y = norm(x)
    assert y.dtype == torch.bfloat16
    rms = y.float().pow(2).mean(-1).sqrt()
    assert torch.allclose(rms, torch.ones(2), atol=2e-2)


def test_attention_is_causal():
    torch.manual_seed(0)
    model = Llama(model_args("tiny", 300, 16)).eval()
    model.init_weights()
    tokens = torch.randint(0, 300, (1, 16))
    changed = tokens.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 300
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert torch.allclose(a[0, :10], b[0, :10], atol=1e-5)
    assert not torch.allclose(a[0, 10:], b[0, 10:], atol=1e-5)


def test_tiny_model_fits_a_fixed_batch():
    torch.manual_seed(0)
    model = Llama(model_args("tiny", 64, 32))
    model.init_weights()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = torch.randint(0, 64, (4, 33))
    losses = []
    for _ in range(30):
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 64), batch[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 4.0 and losses[-1] < losses[0] / 2


def test_schedule_warms_up_then_decays_to_ten_percent():
    settings = TrainSettings(lr=1.0, warmup_steps=10, max_steps=110)
    assert learning_rate(0, settings) == pytest.approx(0.1)
    assert learning_rate(9, settings) == pytest.approx(1.0)
    assert learning_rate(60, settings) == pytest.approx(0.55)
    assert learning_rate(110, settings) == pytest.approx(0.1)


def test_small_configs_exist():
    assert {"tiny", "small", "7B", "13B", "33B", "65B"} <= set(CONFIGS)
