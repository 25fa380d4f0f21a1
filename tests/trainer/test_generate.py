import dataclasses
import shutil

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


def test_generate_command_keeps_the_space_before_the_continuation(tmp_path, monkeypatch, capsys):
    """SentencePiece drops the leading space of the first piece it decodes: the continuation
    is decoded after the prompt, or "The river" + "▁is▁a▁town" prints "The riveris a town"."""
    import sentencepiece as spm

    import trainer.generate
    from flows.cli import main
    from tests.conftest import SAMPLES
    from tests.support.tiny_lm import write_checkpoint

    tokenizer = tmp_path / "tokenizer"
    tokenizer.mkdir()
    shutil.copyfile(SAMPLES / "lm" / "wikipedia.sp.model", tokenizer / "tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer / "tokenizer.model"))
    prompt, whole = sp.encode("The river"), sp.encode("The river is a town")
    assert whole[: len(prompt)] == prompt and sp.id_to_piece(whole[len(prompt)]) == "▁is"
    monkeypatch.setattr(trainer.generate, "generate", lambda *a, **k: whole[len(prompt) :] + [2])
    torch.manual_seed(0)
    checkpoint = write_checkpoint(
        Llama(dataclasses.replace(ARGS, vocab_size=400)), tmp_path / "c.pt"
    )
    command = ["generate", str(checkpoint), "--prompt", "The river", "--tokenizer", str(tokenizer)]
    assert main(command) == 0
    assert capsys.readouterr().out == "The river is a town\n"
