import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from trainer.model import Llama, ModelArgs
from trainer.parallel import World, parallelize

ARGS = ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=100, multiple_of=32, max_seq_len=32)
ONE_CPU = World(0, 1, 0, torch.device("cpu"))


def tiny_model(checkpointing: str) -> Llama:
    torch.manual_seed(0)
    model = Llama(ARGS)
    model.init_weights()
    return parallelize(model, ONE_CPU, checkpointing=checkpointing)


def tokens() -> torch.Tensor:
    return torch.randint(0, 100, (2, 32), generator=torch.Generator().manual_seed(0))


class OpCounter(TorchDispatchMode):
    """How many times each aten op ran while active."""

    def __init__(self):
        super().__init__()
        self.counts: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func] = self.counts.get(func, 0) + 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_activation_checkpointing_keeps_parameter_names(mode):
    plain, checkpointed = tiny_model("none"), tiny_model(mode)
    assert list(checkpointed.state_dict()) == list(plain.state_dict())
    assert [name for name, _ in checkpointed.named_parameters()] == [
        name for name, _ in plain.named_parameters()
    ]
    checkpointed.load_state_dict(plain.state_dict())  # strict: the same keys both ways


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_activation_checkpointing_gives_the_same_loss_and_gradients(mode):
    results = []
    for checkpointing in ("none", mode):
        model = tiny_model(checkpointing)
        loss = model(tokens()).logsumexp(-1).mean()
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters()]))
    (plain_loss, plain_grads), (loss, grads) = results
    assert torch.equal(loss, plain_loss)
    for a, b in zip(plain_grads, grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_full_recomputes_the_matmuls_and_selective_keeps_them():
    mm, silu = torch.ops.aten.mm.default, torch.ops.aten.silu.default
    backward_ops = {}
    for mode in ("none", "full", "selective"):
        model = tiny_model(mode)
        loss = model(tokens()).logsumexp(-1).mean()
        with OpCounter() as counter:
            loss.backward()
        backward_ops[mode] = counter.counts
    # Both recompute the SwiGLU activation of every block in the backward pass...
    assert backward_ops["none"].get(silu, 0) == 0
    assert backward_ops["full"][silu] == backward_ops["selective"][silu] == ARGS.n_layers
    # ...but only full redoes the block's matmuls too.
    assert backward_ops["selective"][mm] == backward_ops["none"][mm]
    assert backward_ops["full"][mm] > backward_ops["none"][mm]


def test_no_recomputation_without_gradients():
    model = tiny_model("full").eval()
    with torch.no_grad():
        assert torch.equal(model(tokens()), tiny_model("none").eval()(tokens()))


def test_unknown_checkpointing_mode_is_refused():
    with pytest.raises(ValueError, match="activation_checkpointing"):
        tiny_model("some")
