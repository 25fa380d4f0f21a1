"""A tokenizer and a tiny LLaMA made in a few seconds from the sample task files
(samples/tasks): the build's SentencePiece settings on their text, and a model that has
seen the answers of some examples (so that an evaluation gets some right and some wrong)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from trainer.model import Llama, ModelArgs

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "samples" / "tasks"
TASK_FILES = {
    "piqa": TASKS / "piqa.jsonl",
    "boolq": TASKS / "boolq.jsonl",
    "arc": TASKS / "arc.jsonl",
    "trivia": TASKS / "trivia.jsonl",
    "gsm8k": TASKS / "gsm8k.jsonl",
}
FEWSHOT_FILES = {name: TASKS / "fewshot" / f"{name}.jsonl" for name in TASK_FILES}
VOCAB = 400
# Short enough that few-shot prompts are cut from the left.
ARGS = ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=VOCAB, multiple_of=32, max_seq_len=160)


def _records() -> list[dict]:
    paths = [*TASK_FILES.values(), *FEWSHOT_FILES.values()]
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def write_tokenizer(directory: Path) -> Path:
    """tokenizer.model and the Hugging Face tokenizer files, as train-tokenizer writes them."""
    from pipelines.hf_tokenizer import hf_files
    from pipelines.recipe import TokenizerConfig
    from pipelines.stages.train_tokenizer import train_sentencepiece

    directory.mkdir(parents=True, exist_ok=True)
    texts = []
    for record in _records():
        texts += [record.get("context", ""), *record.get("choices", [])]
        texts += [record.get("question", ""), *record.get("answers", [])]
    sample = directory / "sample.txt"
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    sample.write_text("\n".join(lines + ["Answer these questions:", "Q: A: Question: Answer:"]))
    model = train_sentencepiece([str(sample)], TokenizerConfig(vocab_size=VOCAB, num_threads=1))
    sample.unlink()
    (directory / "tokenizer.model").write_bytes(model)
    for name, data in hf_files(model, ARGS.max_seq_len).items():
        (directory / name).write_bytes(data)
    return directory


def random_model(tokenizer_dir: Path) -> Llama:
    """A randomly initialized tiny model that answers in the tokenizer's pieces and ends
    some answers with a line break. Its norm gains are away from 1 (a norm mapped wrong in
    an export would show); byte pieces never win (their output rows are zero: a random
    model would write broken UTF-8); and the line break's output row is the direction of
    one piece's embedding, so that a line break follows that piece: a random model would
    hardly ever end a line, and free-form answers end there. The piece is the first of
    those it writes after a question that leaves that answer a piece or more."""
    import sentencepiece as spm

    from trainer import tasks
    from trainer.generate import greedy

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_dir / "tokenizer.model"))
    torch.manual_seed(0)
    model = Llama(ARGS)
    model.init_weights()
    newline = sp.piece_to_id("<0x0A>")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
        for i in range(sp.vocab_size()):
            if sp.is_byte(i):
                model.output.weight[i] = 0.0
        model.eval()
        example = tasks.read_task_file(str(TASK_FILES["trivia"]))[0]
        prompt = [sp.bos_id(), *sp.encode(tasks.question_prompt(example, [], "exact"))]
        written = greedy(model, [prompt], 8)[0]
        embeddings = model.tok_embeddings.weight
        for piece in written[1:]:
            model.output.weight[newline] = embeddings[piece] / embeddings[piece].norm()
            answer = greedy(model, [prompt], 8)[0]
            if newline in answer[1:]:
                return model
    raise AssertionError("no piece of the answer is followed by a line break")


def write_checkpoint(model: Llama, path: Path, step: int = 60) -> Path:
    """A checkpoint.pt as `train` writes it (the fields `generate`, `export` and `eval` read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"model_args": dataclasses.asdict(model.args), "model": state, "step": step}, path)
    return path
