import torch

from trainer.generate import generate
from trainer.model import KVCache, Llama, ModelArgs

ARGS = ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=300, multiple_of=32, max_seq_len=64)


def model() -> Llama:
    torch.manual_seed(0)
    m = Llama(ARGS)
    m.init_weights()
    return m.eval()


def test_cached_steps_give_the_full_forward_logits():
    m = model()
    prompt = [1, 5, 9, 33, 17]
    cache = KVCache.empty(ARGS, 1, 64, "cpu", torch.float32)
    with torch.no_grad():
        first = m(torch.tensor([prompt]), cache, 0)
        step = m(torch.tensor([[7]]), cache, len(prompt))
        full = m(torch.tensor([prompt + [7]]))
    assert torch.allclose(first, full[:, :5], atol=1e-5)
    assert torch.allclose(step[0, -1], full[0, -1], atol=1e-5)


def test_greedy_generation_equals_recomputing_the_prefix():
    m = model()
    prompt = [1, 5, 9, 33, 17]
    sequence, expected = list(prompt), []
    with torch.no_grad():
        for _ in range(20):
            token = int(m(torch.tensor([sequence]))[0, -1].argmax())
            expected.append(token)
            sequence.append(token)
            if token == 2:
                break
    assert generate(m, prompt, 20) == expected


def test_sampling_is_reproducible_and_stays_in_the_context():
    m = model()
    a = generate(m, [1, 2, 3], 100, temperature=1.0, top_p=0.9, seed=4)
    assert a == generate(m, [1, 2, 3], 100, temperature=1.0, top_p=0.9, seed=4)
    assert len(a) <= ARGS.max_seq_len - 3
