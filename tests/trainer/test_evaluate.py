"""trainer/evaluate.py: the paper's protocol against transformers on the export, batches
against one example at a time, the KV cache against recomputing, and the `eval` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from flows.cli import main
from tests.support.tiny_lm import (
    ARGS,
    FEWSHOT_FILES,
    TASK_FILES,
    random_model,
    write_checkpoint,
    write_tokenizer,
)
from trainer import tasks
from trainer.evaluate import Evaluator, evaluate, load_model, load_tasks, load_tokenizer
from trainer.export import export_hf
from trainer.generate import greedy
from trainer.tasks import EvalSettings

# Every format with every scoring; with these shots some prompts are cut from the left.
SCORING = {"piqa": "chars", "boolq": "answer", "arc": "none", "trivia": "exact", "gsm8k": "number"}
SHOTS = {"piqa": 0, "boolq": 3, "arc": 3, "trivia": 2, "gsm8k": 1}
MAX_NEW_TOKENS = 16


def settings(task_files: dict[str, Path] = TASK_FILES, batch_size: int = 8) -> EvalSettings:
    return EvalSettings(
        tasks={name: str(path) for name, path in task_files.items()},
        fewshot={name: str(path) for name, path in FEWSHOT_FILES.items()},
        shots=SHOTS,
        scoring=SCORING,
        batch_size=batch_size,
        max_new_tokens=MAX_NEW_TOKENS,
    )


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def model(tokenizer_dir):
    return random_model(tokenizer_dir)


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory) -> Path:
    return write_checkpoint(model, tmp_path_factory.mktemp("run") / "checkpoint.pt")


class Reference:
    """The protocol written again, one example and one choice at a time, with transformers'
    tokenizer and LlamaForCausalLM loaded from the exported folder."""

    def __init__(self, folder: Path):
        from transformers import AutoTokenizer, LlamaForCausalLM

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = LlamaForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.max_len = self.model.config.max_position_embeddings
        self.cut = 0  # contexts cut from the left to fit

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text).input_ids  # BOS first

    def loglikelihoods(self, context: str, choices: list[str]) -> list[float]:
        pairs = []
        for choice in choices:
            whole = self.ids(context + choice)
            head = min(len(self.ids(context)), len(whole) - 1)
            pairs.append((whole[:head], whole[head:]))
        context_ids = pairs[0][0]
        assert all(head == context_ids for head, _ in pairs)
        room = self.max_len - max(len(tail) for _, tail in pairs)
        if len(context_ids) > room:  # BOS and the last tokens that fit
            context_ids = context_ids[:1] + context_ids[len(context_ids) - room + 1 :]
            self.cut += 1
        out = []
        for _, tail in pairs:
            with torch.no_grad():
                logits = self.model(torch.tensor([context_ids + tail])).logits[0]
            logprobs = logits.float().log_softmax(-1)
            start = len(context_ids) - 1
            out.append(sum(float(logprobs[start + t, token]) for t, token in enumerate(tail)))
        return out

    def answer(self, prompt: str, scoring: str) -> str:
        new_tokens = min(MAX_NEW_TOKENS, self.max_len // 2)
        ids = self.ids(prompt)
        room = self.max_len - new_tokens
        if len(ids) > room:
            ids = ids[:1] + ids[len(ids) - room + 1 :]
            self.cut += 1
        out = self.model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=2,
            pad_token_id=0,
        )
        new = [t for t in out[0, len(ids) :].tolist() if t != 2]
        decode = self.tokenizer.decode
        text = decode(ids + new, skip_special_tokens=True)
        text = text[len(decode(ids, skip_special_tokens=True)) :]
        return text.split(tasks.stop_text(scoring), 1)[0]


def _with_answers(path: Path, answers: dict[int, str], out: Path) -> Path:
    """A copy of a free-form task file where the examples in `answers` also accept it."""
    lines = []
    for i, line in enumerate(path.read_text().splitlines()):
        record = json.loads(line)
        if i in answers:
            record["answers"] = [*record["answers"], answers[i]]
        lines.append(json.dumps(record))
    out.write_text("\n".join(lines) + "\n")
    return out


def test_transformers_on_the_export_gives_our_loglikelihoods_and_accuracies(
    model, tokenizer_dir, checkpoint, tmp_path
):
    export_hf(model.state_dict(), ARGS, str(tmp_path / "hf"), str(tokenizer_dir))
    reference = Reference(tmp_path / "hf")
    loaded = {task.name: task for task in load_tasks(settings())}

    # transformers' greedy answers first: every other free-form example accepts its answer,
    # so that exact match and number match are neither all wrong nor all right.
    answers = {}
    task_files = dict(TASK_FILES)
    for name in ("trivia", "gsm8k"):
        task = loaded[name]
        answers[name] = []
        accepted = {}
        for i, example in enumerate(task.examples):
            shots = tasks.draw_shots(task.fewshot, task.shots, 0, name, i, example)
            generation = reference.answer(
                tasks.question_prompt(example, shots, task.scoring), task.scoring
            )
            answers[name].append(generation)
            if task.scoring == "number":
                number = tasks.final_number(generation)
                if i % 2 == 0 and number is not None:
                    accepted[i] = f"#### {number}"
            elif i % 2 == 0 and tasks.normalize_answer(tasks.short_answer(generation)):
                accepted[i] = tasks.short_answer(generation)
        task_files[name] = _with_answers(TASK_FILES[name], accepted, tmp_path / f"{name}.jsonl")

    ours, _ = load_model(str(checkpoint))
    evaluator = Evaluator(ours, load_tokenizer(str(tokenizer_dir)), batch_size=8)
    results = {r.name: r for r in evaluate(evaluator, load_tasks(settings(task_files)))}

    differences = []
    for name, task in [(t.name, t) for t in load_tasks(settings(task_files))]:
        result = results[name]
        if task.multiple_choice:
            correct = {scoring: 0 for scoring in result.accuracy_by_scoring}
            for i, example in enumerate(task.examples):
                shots = tasks.draw_shots(task.fewshot, task.shots, 0, name, i, example)
                context = tasks.choice_context(example, shots)
                theirs = reference.loglikelihoods(context, example.choices)
                record = result.records[i]
                differences += [
                    abs(a - b) for a, b in zip(record["loglikelihoods"], theirs, strict=True)
                ]
                given_answer = None
                if task.scoring == "answer":
                    given_answer = reference.loglikelihoods("Answer:", example.choices)
                    mine = record["loglikelihoods_given_answer"]
                    differences += [abs(a - b) for a, b in zip(mine, given_answer, strict=True)]
                for scoring in correct:
                    scores = tasks.choice_scores(theirs, example.choices, scoring, given_answer)
                    correct[scoring] += tasks.best(scores) == example.gold
            accuracy = {s: n / len(task.examples) for s, n in correct.items()}
            assert accuracy == result.accuracy_by_scoring, name
        else:
            assert [r["generation"] for r in result.records] == answers[name], name
            match = tasks.number_match if task.scoring == "number" else tasks.exact_match
            extract = (lambda g: g) if task.scoring == "number" else tasks.short_answer
            right = [
                match(extract(g), e.answers)
                for g, e in zip(answers[name], task.examples, strict=True)
            ]
            assert result.accuracy == sum(right) / len(right), name
            assert 0 < result.accuracy < 1, (name, answers[name])
    print(f"largest log-likelihood difference from transformers: {max(differences):.2e}")
    assert len(differences) > 50 and max(differences) < 1e-4
    assert reference.cut > 0  # the left cut was part of the comparison
    assert {r.scoring for r in results.values()} == set(SCORING.values())


def test_batches_give_what_one_example_at_a_time_gives(model, tokenizer_dir):
    tokenizer = load_tokenizer(str(tokenizer_dir))
    loaded = load_tasks(settings())
    one = evaluate(Evaluator(model, tokenizer, batch_size=1), loaded)
    many = evaluate(Evaluator(model, tokenizer, batch_size=16), loaded)
    for a, b in zip(one, many, strict=True):
        assert a.accuracy_by_scoring == b.accuracy_by_scoring, a.name
        for x, y in zip(a.records, b.records, strict=True):
            assert x.keys() == y.keys()
            for key in x:
                if key.startswith("loglikelihoods") or key == "scores":
                    assert x[key] == pytest.approx(y[key], abs=1e-5), (a.name, key)
                else:
                    assert x[key] == y[key], (a.name, key)


def test_cached_batched_greedy_equals_recomputing_every_step(model):
    prompts = [[1, 40, 41, 42], [1] + list(range(100, 125)), [1, 7], [1] + list(range(200, 215))]

    def recomputed(prompt: list[int], stop: int | None, steps: int = 12) -> list[int]:
        sequence, new = list(prompt), []
        with torch.no_grad():
            for _ in range(steps):
                token = int(model(torch.tensor([sequence]))[0, -1].argmax())
                new.append(token)
                sequence.append(token)
                if token in (2, stop):
                    break
        return new

    expected = [recomputed(p, None) for p in prompts]
    assert greedy(model, prompts, 12) == expected
    # Each row stops at its own first `stop`, the others go on.
    stop = expected[0][4]
    stopped = greedy(model, prompts, 12, finished=lambda new: new[-1] in (2, stop))
    assert stopped == [recomputed(p, stop) for p in prompts]
    assert len(stopped[0]) == 5 and stopped != expected


def test_eval_command_prints_a_table_and_writes_results(
    checkpoint, tokenizer_dir, tmp_path, capsys
):
    out, examples = tmp_path / "results.json", tmp_path / "examples.jsonl"
    code = main(
        [
            "eval",
            str(checkpoint),
            "--task",
            f"piqa={TASK_FILES['piqa']}",
            f"gsm8k={TASK_FILES['gsm8k']}",
            "--task",
            f"obqa={TASK_FILES['boolq']}",
            "--fewshot",
            f"gsm8k={FEWSHOT_FILES['gsm8k']}",
            "--shots",
            "gsm8k=2",
            "--scoring",
            "obqa=answer",
            "--max-new-tokens",
            "8",
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(out),
            "--examples",
            str(examples),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for word in ("task", "accuracy", "± stderr", "piqa", "chars", "gsm8k", "number", "answer"):
        assert word in printed
    results = json.loads(out.read_text())
    assert results["step"] == 60 and results["checkpoint"] == str(checkpoint)
    piqa = results["tasks"]["piqa"]
    assert piqa["examples"] == 6 and piqa["shots"] == 0 and piqa["scoring"] == "chars"
    p = piqa["accuracy"]
    assert piqa["stderr"] == pytest.approx((p * (1 - p) / 5) ** 0.5)
    assert set(results["tasks"]["obqa"]["accuracy_by_scoring"]) == {"none", "chars", "answer"}
    assert results["tasks"]["gsm8k"]["shots"] == 2
    records = [json.loads(line) for line in examples.read_text().splitlines()]
    assert len(records) == 6 + 5 + 6
    assert {"task", "id", "loglikelihoods", "prediction", "gold"} <= set(records[0])
    assert records[0]["task"] == "piqa" and records[0]["id"] == "piqa-0"


def test_eval_mistakes_are_one_line(checkpoint, tokenizer_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "x", "choices": [" a", " b"], "gold": 5}\n')
    common = ["eval", str(checkpoint), "--tokenizer", str(tokenizer_dir)]
    cases = {
        f"bad={bad}": f"{bad}:1: `gold` is 5, not an index of the 2 choices",
        f"piqa={TASK_FILES['piqa']} --shots 2": "task piqa: 2 shots need its training examples",
        f"piqa={TASK_FILES['piqa']} --scoring piqa=number": "task piqa is multiple choice",
        f"piqa={TASK_FILES['piqa']} --scoring arc=none": "scoring: no task 'arc' in tasks",
        "piqa": "--task piqa: give NAME=VALUE",
    }
    for task, message in cases.items():
        assert main([*common, "--task", *task.split()]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"llama-recipe: error: {message}"), err
        assert len(err.strip().splitlines()) == 1
