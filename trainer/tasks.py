"""Evaluation tasks as text: the task files (docs/eval.md), few-shot prompts, and the
answer rules of the LLaMA paper's evaluation (Touvron et al. 2023, section 3 and appendix A).
Pure Python: the model side is trainer/evaluate.py.

A task file is JSON lines, one evaluation example a line, all of one kind:
- multiple choice: {"context": str, "choices": [str, ...], "gold": int}; each choice is the
  text that follows the context, appended as it is (so it usually starts with a space);
- free form: {"question": str, "answers": [str, ...]}; any answer counts.
Any line may carry an "id" (and other keys, which are kept out of the prompts).
"""

from __future__ import annotations

import json
import math
import random
import re
import string
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from pipelines.errors import UserError

# How a multiple-choice task picks its answer from the log-likelihoods of its choices:
# chars: per character of the choice (the paper's default); answer: minus the choice's
# log-likelihood after "Answer:" (the paper's OpenBookQA and BoolQ, after Brown et al. 2020);
# none: as it is. How a free-form task checks a generation: exact: normalized exact match
# against any answer (NaturalQuestions, TriviaQA); number: the final number (GSM8K).
MultipleChoiceScoring = Literal["chars", "answer", "none"]
FreeFormScoring = Literal["exact", "number"]
MULTIPLE_CHOICE_SCORINGS = ("chars", "answer", "none")
FREE_FORM_SCORINGS = ("exact", "number")
# The paper's choices by task name (the name's first word: "boolq", "boolq-dev", "boolq_v2").
SCORING_BY_NAME = {"openbookqa": "answer", "boolq": "answer", "gsm8k": "number"}
UNCONDITIONAL_CONTEXT = "Answer:"  # P(completion | "Answer:"), the paper's normalizer
# Tokens a free-form answer may take: a short answer for closed-book QA, a worked solution
# for GSM8K.
MAX_NEW_TOKENS = {"exact": 32, "number": 256}


@dataclass
class MultipleChoice:
    context: str
    choices: list[str]
    gold: int
    id: str | None = None


@dataclass
class FreeForm:
    question: str
    answers: list[str]
    id: str | None = None


Example = MultipleChoice | FreeForm


@dataclass
class EvalSettings:
    """The `evaluation` section of a recipe (validated by pydantic in flows/recipe.py): what
    the eval deployment runs after each training run."""

    __pydantic_config__ = {"extra": "forbid"}  # a typo'd key in a recipe is an error

    tasks: dict[str, str]  # NAME: task file (JSONL, docs/eval.md)
    fewshot: dict[str, str] = field(default_factory=dict)  # NAME: its training examples
    # Examples in each prompt: one number for every task, or per task (the rest: 0).
    shots: int | dict[str, int] = 0
    scoring: dict[str, str] = field(default_factory=dict)  # NAME: chars|answer|none|exact|number
    seed: int = 0  # draws the few-shot examples
    batch_size: int = 8  # examples per forward pass
    max_new_tokens: int | None = None  # None: by scoring (exact 32, number 256)
    checkpoint: str | None = None  # None: checkpoint.pt in the train section's checkpoint_dir

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks: name at least one task file")
        for name in self.tasks:
            check_task_name(name)
        for key in ("fewshot", "scoring") + (("shots",) if isinstance(self.shots, dict) else ()):
            unknown = sorted(set(getattr(self, key)) - set(self.tasks))
            if unknown:
                raise ValueError(f"{key}: no task {unknown[0]!r} in tasks")
        for name, scoring in self.scoring.items():
            if scoring not in MULTIPLE_CHOICE_SCORINGS + FREE_FORM_SCORINGS:
                raise ValueError(f"scoring.{name}: {scoring!r} is none of {_scorings()}")
        if self.batch_size < 1:
            raise ValueError("batch_size: a positive number of examples")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens: a positive number of tokens")
        for name in self.tasks:
            if self.shots_for(name) < 0:
                raise ValueError(f"shots: {name}: a number of examples, 0 or more")

    def shots_for(self, name: str) -> int:
        return self.shots.get(name, 0) if isinstance(self.shots, dict) else self.shots


def _scorings() -> str:
    return ", ".join(MULTIPLE_CHOICE_SCORINGS + FREE_FORM_SCORINGS)


def check_task_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"task name {name!r}: use letters, digits, '.', '-' and '_'")
    return name


# Reading task files: every problem is one line naming the file and the line.


def read_task_file(path: str) -> list[Example]:
    """The examples of a task file, all of one kind; UserError (file:line: problem) else."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
    except FileNotFoundError:
        raise UserError(f"{path}: task file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from None
    examples: list[Example] = []
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{path}:{number}: not UTF-8 text") from None
        if not line.strip():
            continue  # a blank line (the last newline of a file, say) is no example
        example = _example(line, f"{path}:{number}")
        if examples and type(example) is not type(examples[0]):
            first = "multiple choice" if isinstance(examples[0], MultipleChoice) else "free form"
            raise UserError(f"{path}:{number}: the file's first example is {first}, this one not")
        examples.append(example)
    if not examples:
        raise UserError(f"{path}: no examples (one JSON object a line)")
    return examples


def _example(line: str, where: str) -> Example:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise UserError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: a line is a JSON object")
    identity = record.get("id")
    if identity is not None and not isinstance(identity, (str, int)):
        raise UserError(f"{where}: `id` is a string or a number")
    identity = None if identity is None else str(identity)
    if "choices" in record or "context" in record or "gold" in record:
        context = _field(record, "context", str, where)
        choices = _strings(record, "choices", where)
        gold = _field(record, "gold", int, where)
        if not 0 <= gold < len(choices):
            count = len(choices)
            raise UserError(f"{where}: `gold` is {gold}, not an index of the {count} choices")
        return MultipleChoice(context, choices, gold, identity)
    if "question" in record or "answers" in record:
        question = _field(record, "question", str, where)
        return FreeForm(question, _strings(record, "answers", where), identity)
    raise UserError(
        f"{where}: neither multiple choice (context, choices, gold) nor free form "
        "(question, answers)"
    )


def _field(record: dict, key: str, kind: type, where: str):
    if key not in record:
        raise UserError(f"{where}: `{key}` is missing")
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UserError(f"{where}: `{key}` is not {'a string' if kind is str else 'an integer'}")
    return value


def _strings(record: dict, key: str, where: str) -> list[str]:
    if key not in record:
        raise UserError(f"{where}: `{key}` is missing")
    values = record[key]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise UserError(f"{where}: `{key}` is not a non-empty list of strings")
    if not all(values):
        raise UserError(f"{where}: `{key}` holds an empty string")
    return values


def default_scoring(name: str, examples: list[Example]) -> str:
    """The paper's scoring for a task: by its name where the paper names one, else chars
    (multiple choice) or exact (free form)."""
    first_word = re.split(r"[^a-z0-9]", name.lower())[0]
    multiple_choice = isinstance(examples[0], MultipleChoice)
    by_name = SCORING_BY_NAME.get(first_word)
    if by_name in (MULTIPLE_CHOICE_SCORINGS if multiple_choice else FREE_FORM_SCORINGS):
        return by_name
    return "chars" if multiple_choice else "exact"


def check_scoring(name: str, examples: list[Example], scoring: str) -> str:
    multiple_choice = isinstance(examples[0], MultipleChoice)
    allowed = MULTIPLE_CHOICE_SCORINGS if multiple_choice else FREE_FORM_SCORINGS
    if scoring not in allowed:
        kind = "multiple choice" if multiple_choice else "free form"
        raise UserError(f"task {name} is {kind}: its scoring is one of {', '.join(allowed)}")
    return scoring


# Few-shot prompts.


def draw_shots(
    train: list[Example], shots: int, seed: int, task: str, index: int, target: Example
) -> list[Example]:
    """`shots` training examples for the evaluation example at `index`, drawn without
    replacement by a generator seeded with (seed, task, index): the same prompts on every
    run, whatever the batch or the other tasks. An example identical to the target is
    never its own shot."""
    if shots == 0:
        return []
    candidates = [e for e in train if _prompt_text(e) != _prompt_text(target)]
    rng = random.Random(f"{seed}/{task}/{index}")
    return rng.sample(candidates, min(shots, len(candidates)))


def _prompt_text(example: Example) -> str:
    return example.context if isinstance(example, MultipleChoice) else example.question


def choice_context(example: MultipleChoice, shots: list[MultipleChoice]) -> str:
    """The context the choices follow: each shot's context and gold choice, then the
    example's context, separated by blank lines."""
    return "\n\n".join([s.context + s.choices[s.gold] for s in shots] + [example.context])


def question_prompt(example: FreeForm, shots: list[FreeForm], scoring: str) -> str:
    """The prompt a free-form answer follows. Closed-book QA as in the paper's appendix A
    ("Answer these questions:", then Q:/A: lines, the first answer of each shot); number
    tasks, whose worked answers span lines, as "Question: ...\\nAnswer: ..." blocks
    separated by blank lines."""
    if scoring == "exact":
        lines = [f"Q: {s.question}\nA: {s.answers[0]}\n" for s in shots]
        return "Answer these questions:\n" + "".join(lines) + f"Q: {example.question}\nA:"
    blocks = [f"Question: {s.question}\nAnswer: {s.answers[0]}" for s in shots]
    return "\n\n".join([*blocks, f"Question: {example.question}\nAnswer:"])


def stop_text(scoring: str) -> str:
    """Where a generated answer ends: its line (exact), its block (number)."""
    return "\n" if scoring == "exact" else "\n\n"


# Answers: which choice, and whether a generation is right.


def choice_scores(
    loglikelihoods: list[float],
    choices: list[str],
    scoring: str,
    unconditional: list[float] | None = None,
) -> list[float]:
    """What the prediction maximizes: the log-likelihood of each choice given the context,
    per character of the choice (chars), minus its log-likelihood given "Answer:" (answer,
    i.e. log P(choice|context) / P(choice|"Answer:")), or as it is (none)."""
    if scoring == "chars":
        return [ll / len(choice) for ll, choice in zip(loglikelihoods, choices, strict=True)]
    if scoring == "answer":
        if unconditional is None:
            raise ValueError("answer scoring needs the log-likelihoods given 'Answer:'")
        return [ll - base for ll, base in zip(loglikelihoods, unconditional, strict=True)]
    return list(loglikelihoods)


def best(scores: list[float]) -> int:
    """The index of the highest score (the first of equals)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's and TriviaQA's normalization: lowercase, no punctuation, no articles (a, an,
    the), runs of whitespace as one space, none at the ends."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


_ANSWER_END = re.compile(r"[.,](?=\s|$)")


def short_answer(generation: str) -> str:
    """The answer in a closed-book QA generation: up to the first line break, then up to
    the first dot or comma that ends a word (the paper's appendix A), without the spaces
    around it."""
    line = generation.split("\n", 1)[0]
    return _ANSWER_END.split(line, 1)[0].strip()


def exact_match(prediction: str, answers: list[str]) -> bool:
    wanted = normalize_answer(prediction)
    return any(normalize_answer(answer) == wanted for answer in answers)


# A number with optional minus, thousands commas and decimals; not the tail of a word or
# of another number ("x2", "1.5.3").
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?!\.?\d)")


def final_number(text: str) -> Decimal | None:
    """The last number in a text, as a Decimal (commas dropped: 1,234.50 is 1234.50)."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return Decimal(found[-1].replace(",", ""))
    except InvalidOperation:  # cannot happen for what the pattern matches; be safe
        return None


def number_match(generation: str, answers: list[str]) -> bool:
    """Whether the final number of the generation equals the final number of an answer
    (GSM8K: "#### 72" ends each worked answer; 72.00 equals 72)."""
    predicted = final_number(generation)
    return predicted is not None and any(final_number(a) == predicted for a in answers)


def standard_error(accuracy: float, n: int) -> float:
    """The standard error of an accuracy over n examples, sqrt(p(1-p)/(n-1))."""
    return math.sqrt(accuracy * (1 - accuracy) / (n - 1)) if n > 1 else 0.0
