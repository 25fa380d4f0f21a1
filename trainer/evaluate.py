"""The LLaMA paper's evaluation (Touvron et al. 2023, section 3) of a checkpoint on task
files (trainer/tasks.py, docs/eval.md).

Multiple choice: the log-likelihood of each choice after its context, the choices of an
example scored from one pass over the context (its keys and values cached, then copied to
one row per choice). Free form: greedy generation, many prompts per batch. Batches are
padded on the left, so the last context token of every row is in the same column.

A text pair is tokenized as the whole string (BOS, then context + completion) and the
context alone: the completion is what the whole has beyond the context's tokens, so the
tokens scored are exactly the ones the model reads when the text runs on, and
SentencePiece's leading space is where it would be. Where a context and its longest
completion do not fit max_seq_len, the context loses tokens from its left, after BOS.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from pipelines.errors import UserError
from trainer import tasks
from trainer.checkpoint import load_whole
from trainer.generate import continuation, greedy, left_padded
from trainer.model import KVCache, Llama, ModelArgs
from trainer.tasks import EvalSettings, Example, FreeForm, MultipleChoice


class Tokenizer(Protocol):  # sentencepiece.SentencePieceProcessor
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def bos_id(self) -> int: ...
    def eos_id(self) -> int: ...
    def vocab_size(self) -> int: ...


@dataclass
class Task:
    name: str
    examples: list[Example]
    fewshot: list[Example]
    shots: int
    scoring: str
    max_new_tokens: int

    @property
    def multiple_choice(self) -> bool:
        return isinstance(self.examples[0], MultipleChoice)


@dataclass
class TaskResult:
    name: str
    scoring: str
    shots: int
    accuracy: float
    stderr: float
    # Multiple choice: the accuracy under each scoring computed (none and chars always).
    accuracy_by_scoring: dict[str, float]
    records: list[dict[str, Any]] = field(repr=False)

    @property
    def examples(self) -> int:
        return len(self.records)


def load_tasks(settings: EvalSettings, limit: int | None = None) -> list[Task]:
    """Read and check every task file and few-shot file before anything runs; `limit`: the
    first examples of each task only."""
    loaded = []
    for name, path in settings.tasks.items():
        examples = tasks.read_task_file(path)[:limit]
        scoring = settings.scoring.get(name) or tasks.default_scoring(name, examples)
        tasks.check_scoring(name, examples, scoring)
        shots = settings.shots_for(name)
        fewshot: list[Example] = []
        if shots:
            if name not in settings.fewshot:
                raise UserError(
                    f"task {name}: {shots} shots need its training examples "
                    f"(--fewshot {name}=FILE, or evaluation.fewshot.{name})"
                )
            fewshot = tasks.read_task_file(settings.fewshot[name])
            if type(fewshot[0]) is not type(examples[0]):
                raise UserError(f"{settings.fewshot[name]}: not the same kind of example as {path}")
        budget = settings.max_new_tokens or tasks.MAX_NEW_TOKENS.get(scoring, 0)
        loaded.append(Task(name, examples, fewshot, shots, scoring, budget))
    return loaded


def load_model(path: str) -> tuple[Llama, dict[str, Any]]:
    """A checkpoint.pt written by `train`, or a folder written by `export --hf`: the model
    (on the CPU, in eval mode) and what the checkpoint says of itself (its step...)."""
    from trainer.export import load_hf

    meta: dict[str, Any] = {}
    try:
        if os.path.isdir(path):
            state, args = load_hf(path)
        else:
            checkpoint = load_whole(path)
            state, args = checkpoint["model"], ModelArgs(**checkpoint["model_args"])
            meta = {k: v for k, v in checkpoint.items() if k not in ("model", "optimizer")}
        model = Llama(args)
        model.load_state_dict(state)
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a checkpoint.pt or an export folder ({problem})") from None
    return model.eval(), meta


class Evaluator:
    """A model and its tokenizer, and the two things the protocol asks of them: the
    log-likelihoods of completions, and greedy answers."""

    def __init__(self, model: Llama, tokenizer: Tokenizer, batch_size: int = 8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_len = model.args.max_seq_len
        device = next(model.parameters()).device
        # As the trainer computes on CUDA: bf16 autocast (the weights stay fp32); fp32 on CPU.
        self.autocast: Any = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if device.type == "cuda"
            else contextlib.nullcontext()
        )
        self._newline_ids: set[int] | None = None

    def encode(self, text: str) -> list[int]:
        return [self.tokenizer.bos_id(), *self.tokenizer.encode(text)]

    def split(self, context: str, completion: str) -> tuple[list[int], list[int]]:
        """The tokens of context + completion, cut where the completion begins (at least
        one token on each side of the cut)."""
        whole = self.encode(context + completion)
        cut = min(len(self.encode(context)) if context else 1, len(whole) - 1)
        return whole[:cut], whole[cut:]

    # Log-likelihoods.

    def loglikelihoods(self, requests: list[tuple[str, list[str]]]) -> list[list[float]]:
        """For each (context, completions): log P(completion | context), summed over the
        completion's tokens, per completion."""
        units: list[_Unit] = []
        for r, (context, completions) in enumerate(requests):
            grouped: dict[tuple[int, ...], _Unit] = {}
            for j, completion in enumerate(completions):
                head, tail = self.split(context, completion)
                # Completions that change the context's last tokens (a merge across the
                # cut) get a context of their own.
                unit = grouped.setdefault(tuple(head), _Unit(head, [], []))
                unit.completions.append(tail)
                unit.owners.append((r, j))
            units += [unit.fitted(self.max_len) for unit in grouped.values()]
        out = [[0.0] * len(completions) for _, completions in requests]
        with torch.no_grad(), self.autocast:
            for batch in self._batches(units):
                for unit, scores in zip(batch, self._score(batch), strict=True):
                    for (r, j), score in zip(unit.owners, scores, strict=True):
                        out[r][j] = score
        return out

    def _batches(self, units: list[_Unit]) -> Iterator[list[_Unit]]:
        """Units by decreasing context length, batch_size at a time, cut earlier where the
        longest context and the longest completion of a batch would not fit max_seq_len."""
        batch: list[_Unit] = []
        width = fed = 0  # the batch's longest context, and its most completion tokens fed
        for unit in sorted(units, key=lambda u: -len(u.context)):
            grown = max(width, len(unit.context)), max(fed, unit.longest - 1)
            if batch and (len(batch) == self.batch_size or sum(grown) > self.max_len):
                yield batch
                batch, grown = [], (len(unit.context), unit.longest - 1)
            batch.append(unit)
            width, fed = grown
        if batch:
            yield batch

    def _score(self, batch: list[_Unit]) -> list[list[float]]:
        model, device = self.model, next(self.model.parameters()).device
        contexts, padding = left_padded([u.context for u in batch], device)
        width = contexts.shape[1]
        # Row per completion, and the tokens fed after the context (all but the last).
        owner = [b for b, unit in enumerate(batch) for _ in unit.completions]
        completions = [c for unit in batch for c in unit.completions]
        fed = max(len(c) for c in completions) - 1
        cache = KVCache.empty(model.args, len(batch), width + fed, device, _dtype(model))
        first = model(contexts, cache, 0, padding)[:, -1].float().log_softmax(-1)
        rows = torch.tensor(owner, device=device)
        first_tokens = torch.tensor([c[0] for c in completions], device=device)
        scores = first[rows, first_tokens].double().cpu().tolist()
        if fed > 0:
            # The context's keys and values copied to each of its completions' rows.
            cache = KVCache([k[rows] for k in cache.keys], [v[rows] for v in cache.values])
            # Each completion's tokens but the last in, its tokens but the first predicted;
            # padded on the right, where nothing before reads the pads.
            inputs = torch.zeros(len(completions), fed, dtype=torch.long)
            targets = torch.zeros(len(completions), fed, dtype=torch.long)
            counted = torch.zeros(len(completions), fed, dtype=torch.float64)
            for i, c in enumerate(completions):
                inputs[i, : len(c) - 1] = torch.tensor(c[:-1])
                targets[i, : len(c) - 1] = torch.tensor(c[1:])
                counted[i, : len(c) - 1] = 1.0
            padding = torch.cat([padding[rows], padding.new_zeros(len(completions), fed)], 1)
            logits = model(inputs.to(device), cache, width, padding).float().log_softmax(-1)
            picked = logits.gather(-1, targets.to(device)[..., None])[..., 0].cpu()
            rest = (picked.double() * counted).sum(-1).tolist()
            scores = [s + r for s, r in zip(scores, rest, strict=True)]
        out: list[list[float]] = [[] for _ in batch]
        for b, score in zip(owner, scores, strict=True):
            out[b].append(score)
        return out

    # Greedy answers.

    def answers(self, prompts: list[str], max_new_tokens: int, stop: str) -> list[str]:
        """The greedy continuation of each prompt, up to `stop` (not included), EOS, or
        max_new_tokens (at most half of max_seq_len); prompts that leave less room lose
        tokens from their left."""
        new_tokens = min(max_new_tokens, self.max_len // 2)
        room = self.max_len - new_tokens
        encoded = [_left_cut(self.encode(p), room) for p in prompts]
        eos = self.tokenizer.eos_id()
        newlines = self.newline_ids()

        def finished(new: list[int]) -> bool:
            return new[-1] == eos or (new[-1] in newlines and stop in self.tokenizer.decode(new))

        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        out = [""] * len(prompts)
        with torch.no_grad(), self.autocast:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                generated = greedy(self.model, [encoded[i] for i in chunk], new_tokens, finished)
                for i, new in zip(chunk, generated, strict=True):
                    new = new[:-1] if new and new[-1] == eos else new
                    out[i] = continuation(self.tokenizer, encoded[i], new).split(stop, 1)[0]
        return out

    def newline_ids(self) -> set[int]:
        """The tokens whose text holds a line break (a stop can only follow one of them)."""
        if self._newline_ids is None:
            decode = self.tokenizer.decode
            self._newline_ids = {
                i for i in range(self.tokenizer.vocab_size()) if "\n" in decode([i])
            }
        return self._newline_ids

    # Tasks.

    def run(self, task: Task, seed: int = 0) -> TaskResult:
        examples = task.examples
        shots = [
            tasks.draw_shots(task.fewshot, task.shots, seed, task.name, i, example)
            for i, example in enumerate(examples)
        ]
        if task.multiple_choice:
            return self._multiple_choice(task, examples, shots)
        return self._free_form(task, examples, shots)

    def _multiple_choice(
        self, task: Task, examples: list[MultipleChoice], shots: list[list[Example]]
    ) -> TaskResult:
        contexts = [tasks.choice_context(e, s) for e, s in zip(examples, shots, strict=True)]
        given_context = self.loglikelihoods(
            [(c, e.choices) for c, e in zip(contexts, examples, strict=True)]
        )
        given_answer = None
        if task.scoring == "answer":
            unconditional = [(tasks.UNCONDITIONAL_CONTEXT, e.choices) for e in examples]
            given_answer = self.loglikelihoods(unconditional)
        scorings = ["none", "chars"] + (["answer"] if given_answer else [])
        correct = {name: 0 for name in scorings}
        records = []
        for i, example in enumerate(examples):
            base = given_answer[i] if given_answer else None
            for name in scorings:
                scores = tasks.choice_scores(given_context[i], example.choices, name, base)
                correct[name] += tasks.best(scores) == example.gold
            scores = tasks.choice_scores(given_context[i], example.choices, task.scoring, base)
            prediction = tasks.best(scores)
            record = {"index": i, "id": example.id, "loglikelihoods": given_context[i]}
            if base is not None:
                record["loglikelihoods_given_answer"] = base
            record.update(scores=scores, prediction=prediction, gold=example.gold)
            records.append({**record, "correct": prediction == example.gold})
        by_scoring = {name: correct[name] / len(examples) for name in scorings}
        return _result(task, records, by_scoring)

    def _free_form(
        self, task: Task, examples: list[FreeForm], shots: list[list[Example]]
    ) -> TaskResult:
        prompts = [
            tasks.question_prompt(e, s, task.scoring) for e, s in zip(examples, shots, strict=True)
        ]
        generations = self.answers(prompts, task.max_new_tokens, tasks.stop_text(task.scoring))
        records = []
        for i, (example, generation) in enumerate(zip(examples, generations, strict=True)):
            if task.scoring == "number":
                number = tasks.final_number(generation)
                prediction = None if number is None else str(number)
                correct = tasks.number_match(generation, example.answers)
            else:
                prediction = tasks.short_answer(generation)
                correct = tasks.exact_match(prediction, example.answers)
            records.append(
                {
                    "index": i,
                    "id": example.id,
                    "generation": generation,
                    "prediction": prediction,
                    "answers": example.answers,
                    "correct": correct,
                }
            )
        accuracy = sum(r["correct"] for r in records) / len(records)
        return _result(task, records, {task.scoring: accuracy})


@dataclass
class _Unit:
    """Completions that share a context's tokens, and (request, completion) each answers."""

    context: list[int]
    completions: list[list[int]]
    owners: list[tuple[int, int]]

    @property
    def longest(self) -> int:
        return max(len(c) for c in self.completions)

    def fitted(self, max_len: int) -> _Unit:
        """The unit in a window of max_len tokens: completions first (each cut to
        max_len - 1 tokens, a case for nonsense data only), the context's right end after."""
        completions = [c[: max_len - 1] for c in self.completions]
        room = max_len - max(len(c) for c in completions)
        return _Unit(_left_cut(self.context, room), completions, self.owners)


def _left_cut(tokens: list[int], room: int) -> list[int]:
    """At most `room` tokens: the first (BOS) and the last room - 1."""
    return tokens if len(tokens) <= room else tokens[:1] + tokens[len(tokens) - room + 1 :]


def _dtype(model: Llama) -> torch.dtype:
    return next(model.parameters()).dtype


def _result(task: Task, records: list[dict[str, Any]], by_scoring: dict[str, float]) -> TaskResult:
    accuracy = by_scoring[task.scoring]
    stderr = tasks.standard_error(accuracy, len(records))
    return TaskResult(task.name, task.scoring, task.shots, accuracy, stderr, by_scoring, records)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device {name!r}: cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name}: no CUDA device here")
    return device


def load_tokenizer(directory: str):
    import sentencepiece as spm

    path = os.path.join(directory, "tokenizer.model")
    if not os.path.isfile(path):
        raise UserError(f"{directory}: no tokenizer.model there")
    return spm.SentencePieceProcessor(model_file=path)


def evaluate_checkpoint(
    checkpoint: str,
    tokenizer_dir: str,
    settings: EvalSettings,
    device: str = "auto",
    limit: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> tuple[list[TaskResult], dict[str, Any]]:
    """Every task of `settings` on a checkpoint.pt or an exported folder: the results, and
    what the checkpoint says of itself. The task files are read and checked first."""
    loaded = load_tasks(settings, limit)
    if not os.path.exists(checkpoint):
        raise UserError(f"{checkpoint}: checkpoint not found")
    tokenizer = load_tokenizer(tokenizer_dir)
    model, meta = load_model(checkpoint)
    if model.args.vocab_size < tokenizer.vocab_size():
        raise UserError(f"{tokenizer_dir}: a vocabulary larger than the model's")
    model.to(pick_device(device))
    evaluator = Evaluator(model, tokenizer, settings.batch_size)
    return evaluate(evaluator, loaded, settings.seed, say), meta


def evaluate(
    evaluator: Evaluator,
    loaded: list[Task],
    seed: int = 0,
    say: Callable[[str], None] = lambda line: None,
) -> list[TaskResult]:
    results = []
    for task in loaded:
        say(f"{task.name}: {len(task.examples)} examples, {task.shots}-shot, {task.scoring}")
        results.append(evaluator.run(task, seed))
    return results


def summary(results: list[TaskResult]) -> list[dict[str, Any]]:
    """One row per task: the table `eval` prints and the eval flow publishes."""
    return [
        {
            "task": r.name,
            "scoring": r.scoring,
            "shots": r.shots,
            "examples": r.examples,
            "accuracy": round(r.accuracy, 4),
            "stderr": round(r.stderr, 4),
            "unnormalized": round(r.accuracy_by_scoring["none"], 4)
            if "none" in r.accuracy_by_scoring
            else None,
        }
        for r in results
    ]


def results_json(
    results: list[TaskResult], checkpoint: str, step: int | None = None
) -> dict[str, Any]:
    """What `--out` writes: the checkpoint, its training step, and each task's numbers."""
    return {
        "checkpoint": checkpoint,
        "step": step,
        "tasks": {
            r.name: {
                "scoring": r.scoring,
                "shots": r.shots,
                "examples": r.examples,
                "accuracy": r.accuracy,
                "stderr": r.stderr,
                "accuracy_by_scoring": r.accuracy_by_scoring,
            }
            for r in results
        },
    }


def write_results(
    results: list[TaskResult],
    checkpoint: str,
    step: int | None,
    out: str | None = None,
    examples: str | None = None,
) -> None:
    """results_json to `out`, and every example's record, its task first, as JSON lines to
    `examples`."""
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(results_json(results, checkpoint, step), fh, indent=2)
    if examples:
        with open(examples, "w", encoding="utf-8") as fh:
            for result in results:
                for record in result.records:
                    fh.write(json.dumps({"task": result.name, **record}, ensure_ascii=False))
                    fh.write("\n")
