"""Benchmark contamination: which training documents share a run of words with an evaluation
example (GPT-3's 13-gram overlap test, Brown et al. 2020, appendix C).

Texts are compared as words after a normalization under which case, accents, punctuation,
quote styles, line breaks, HTML escapes and tags, and prompt labels do not matter: HTML
entities unescaped, tags removed, labels such as "Question:" or "A:" dropped, compatibility
forms folded (NFKD: full-width letters, ligatures, non-breaking spaces), case folded,
combining marks and invisible format characters dropped, and every run of characters that
are not letters or digits made one space.

An example stands for a few texts (multiple choice: the context with the gold choice, and with
every choice in order, bare and lettered "a ... b ..." as a pasted question with its options
reads; free form: the question with each answer). Each text of at least `ngram` words gives
all its `ngram`-word windows; a shorter one of at least `min_words` words is one window of its
own length; an example with no text that long is too short to check. A document is
contaminated when one of its windows of those lengths is one of the example's.

Words are hashed with numpy (a polynomial over each word's bytes, then MurmurHash3's
finalizer), windows combine consecutive word hashes, and the example windows sit in sorted
arrays; a document's windows go through a table of the examples' low hash bits first, and
the few that pass are looked up with `searchsorted`: no Python runs per word.
"""

from __future__ import annotations

import html
import io
import json
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from dedup.minhash import mix64

_U64 = np.uint64
_BYTE_BASE = _U64(0x100000001B3)  # FNV-64 prime: odd
_WORD_BASE = _U64(0x9E3779B97F4A7C15)  # the golden-ratio constant, odd
_TAG_RE = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_NON_WORD_RE = re.compile(r"[\W_]+")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
# The word before a colon, and the words that make it a prompt's label.
_LABEL_RE = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z]{1,11})[ \t]*$")
_LABELS = frozenset(
    "question answer q a options option choices choice solution goal context passage hint "
    "explanation response input output".split()
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _ascii_table() -> bytes:
    """bytes.translate table: ASCII letters and digits in lower case, everything else a space."""
    return bytes((ord(chr(c).lower()) if c < 128 and chr(c).isalnum() else 32) for c in range(256))


_ASCII_TABLE = _ascii_table()


@lru_cache(maxsize=1)
def _dropped_characters() -> dict[int, None]:
    """str.translate table deleting combining marks (accents, after NFKD) and invisible format
    characters (soft hyphens, zero-width spaces), which would otherwise split words."""
    return {
        code: None
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Mn", "Mc", "Me", "Cf")
    }


def _fold(run: str) -> str:
    """A run of non-ASCII characters normalized: compatibility forms decomposed, case folded,
    marks and format characters dropped, what is not a letter or digit a space."""
    run = unicodedata.normalize("NFKD", run).casefold()
    if not unicodedata.is_normalized("NFKD", run):
        run = unicodedata.normalize("NFKD", run)
    return _NON_WORD_RE.sub(" ", run.translate(_dropped_characters()))


_fold_short = lru_cache(maxsize=1 << 16)(_fold)  # quotes, dashes, accented letters: they repeat


def _fold_match(match: re.Match[str]) -> str:
    run = match.group()
    return _fold_short(run) if len(run) <= 16 else _fold(run)


def _without_labels(text: str) -> str:
    """The text without prompt labels ("Question:", "A:", "Solution:"): an example is often
    pasted with them, or with others, or without."""
    pieces, done, colon = [], 0, text.find(":")
    while colon != -1:  # a literal search: the colons are few, the text long
        label = _LABEL_RE.search(text, max(done, colon - 24), colon)
        if label and label.group(1).lower() in _LABELS:
            pieces += [text[done : label.start(1)], " "]
            done = colon + 1
        colon = text.find(":", colon + 1)
    return "".join([*pieces, text[done:]]) if pieces else text


def normalized_bytes(text: str) -> bytes:
    """The words of `text`, normalized, as UTF-8 separated by single spaces."""
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    if ":" in text:
        text = _without_labels(text)
    if not text.isascii():
        # Only the non-ASCII runs take the slow path (every step of it works character by
        # character, so a run needs none of its neighbours); most web text then is ASCII.
        text = _NON_ASCII_RE.sub(_fold_match, text)
        if not text.isascii():
            return _NON_WORD_RE.sub(" ", text.lower()).strip().encode("utf-8")
    return b" ".join(text.encode("ascii").translate(_ASCII_TABLE).split())


def normalize(text: str) -> str:
    """The words of `text`, normalized, separated by single spaces."""
    return normalized_bytes(text).decode("utf-8")


@lru_cache(maxsize=4)
def _powers(n: int) -> np.ndarray:
    """_BYTE_BASE^i (mod 2^64) for i < n."""
    with np.errstate(over="ignore"):
        return np.concatenate(([_U64(1)], np.cumprod(np.full(n - 1, _BYTE_BASE, dtype=_U64))))


@dataclass(frozen=True)
class Words:
    """The words of normalized texts joined by spaces: a hash per word, where it lies in the
    joined bytes, and which text it belongs to."""

    joined: bytes
    hashes: np.ndarray  # uint64
    starts: np.ndarray  # byte offsets in `joined`
    ends: np.ndarray
    text_of: np.ndarray  # index of the text each word belongs to

    @classmethod
    def of(cls, normalized: Sequence[bytes]) -> Words:
        counts = [piece.count(b" ") + 1 if piece else 0 for piece in normalized]
        joined = b" ".join(piece for piece in normalized if piece)
        data = np.frombuffer(joined, dtype=np.uint8)
        text_of = np.repeat(np.arange(len(normalized), dtype=np.int64), counts)
        if data.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(joined, np.zeros(0, dtype=_U64), empty, empty, text_of)
        is_space = data == 32
        starts = np.flatnonzero(np.concatenate(([True], is_space[:-1])) & ~is_space)
        ends = np.flatnonzero(is_space[1:] & ~is_space[:-1]) + 1
        ends = np.concatenate((ends, [data.size]))
        lengths = ends - starts
        # Each byte's place in its word: the polynomial sum_k (byte_k + 1) * BASE^k per word,
        # added up word by word (reduceat), so only powers up to the longest word are needed.
        letters = data[~is_space]
        first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        place = np.arange(letters.size) - np.repeat(first, lengths)
        with np.errstate(over="ignore"):
            terms = (letters.astype(_U64) + _U64(1)) * _powers_to(int(lengths.max()))[place]
            sums = np.add.reduceat(terms, first)
            hashes = mix64(sums ^ (lengths.astype(_U64) * _WORD_BASE))
        return cls(joined, hashes, starts, ends, text_of)

    def windows(
        self, lengths: set[int], sieves: dict[int, np.ndarray] | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(length, first word, hash) of the windows of consecutive words of one text, for
        each of `lengths`; with `sieves`, only those whose hash's low bits index a True in
        their length's sieve (a boolean table a power of two long)."""
        window = self.hashes
        with np.errstate(over="ignore"):
            for length in range(1, max(lengths, default=0) + 1):
                if length > 1:
                    window = window[:-1] * _WORD_BASE + self.hashes[length - 1 :]
                if length not in lengths:
                    continue
                if sieves is None:
                    first = np.arange(window.size)
                else:
                    sieve = sieves[length]
                    first = np.flatnonzero(sieve[window & _U64(sieve.size - 1)])
                first = first[self.text_of[first] == self.text_of[first + length - 1]]
                yield length, first, window[first]

    def text(self, first: int, length: int) -> str:
        """The words first .. first + length - 1, as normalized text."""
        return self.joined[self.starts[first] : self.ends[first + length - 1]].decode("utf-8")


def _powers_to(n: int) -> np.ndarray:
    """At least n powers: tables of 64 to 65,536 kept (powers of two), longer ones not."""
    capacity = 1 << max(6, (n - 1).bit_length())
    return _powers(capacity) if capacity <= 1 << 16 else _powers.__wrapped__(capacity)


# -- evaluation tasks ------------------------------------------------------------------------


class TaskFileError(ValueError):
    """An evaluation task file that cannot be read: the message names the file and line."""


@dataclass(frozen=True)
class Example:
    task: str
    id: str  # the example's "id", or its line number in the task file
    texts: tuple[str, ...]  # what a document that holds the example holds


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _example(task: str, record: object, line: int) -> Example:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    name = record.get("id", line)
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise ValueError('"id" must be a string or an integer')
    if "context" in record or "choices" in record:
        context, choices, gold = record.get("context"), record.get("choices"), record.get("gold")
        if not isinstance(context, str):
            raise ValueError('"context" must be a string')
        if not _strings(choices):
            raise ValueError('"choices" must be a non-empty list of strings')
        if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(choices):
            raise ValueError(f'"gold" must be the index of a choice (0 to {len(choices) - 1})')
        lettered = " ".join(f"{LETTERS[i % 26]} {c}" for i, c in enumerate(choices))
        texts = (
            f"{context} {choices[gold]}",
            f"{context} {' '.join(choices)}",
            f"{context} {lettered}",
        )
    elif "question" in record or "answers" in record:
        question, answers = record.get("question"), record.get("answers")
        if not isinstance(question, str):
            raise ValueError('"question" must be a string')
        if not _strings(answers):
            raise ValueError('"answers" must be a non-empty list of strings')
        texts = tuple(f"{question} {answer}" for answer in answers)
    else:
        raise ValueError(
            'neither multiple choice ("context", "choices", "gold") '
            'nor free form ("question", "answers")'
        )
    return Example(task, str(name), texts)


def read_task(task: str, path: str, data: bytes) -> list[Example]:
    """The examples of a task file (JSON lines, one example a line: `{"context", "choices",
    "gold"}` or `{"question", "answers"}`, optionally `"id"`; blank lines skipped, as the eval
    command skips them); TaskFileError naming the file and the line of the first bad one,
    as `path:line: problem`."""
    examples = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            examples.append(_example(task, record, number))
        except UnicodeDecodeError:
            raise TaskFileError(f"{path}:{number}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise TaskFileError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        except ValueError as exc:
            raise TaskFileError(f"{path}:{number}: {exc}") from None
    if not examples:
        raise TaskFileError(f"{path}: no examples")
    return examples


# -- the index -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contamination:
    """What a document shares with the evaluation sets: the first match in the document (its
    task, example id and the matched words, normalized) and every example found in it."""

    task: str
    example: str
    ngram: str
    examples: tuple[int, ...]  # indexes into EvalIndex.example_ids


@dataclass(frozen=True)
class TaskCounts:
    examples: int
    too_short: int  # fewer than min_words words in every text: not checked


@dataclass
class EvalIndex:
    """The windows of every evaluation example, by window length: sorted hashes with the
    example each belongs to (a window two examples share is there twice)."""

    tasks: dict[str, TaskCounts]
    example_ids: list[str]
    example_task: np.ndarray  # per example: index into `tasks`
    windows: dict[int, tuple[np.ndarray, np.ndarray]]  # length -> (hashes, example indexes)

    @classmethod
    def build(cls, examples: Sequence[Example], ngram: int, min_words: int) -> EvalIndex:
        tasks = list(dict.fromkeys(e.task for e in examples))
        owner = [i for i, e in enumerate(examples) for _ in e.texts]
        words = Words.of([normalized_bytes(t) for e in examples for t in e.texts])
        per_text = np.bincount(words.text_of, minlength=len(owner))
        longest = np.zeros(len(examples), dtype=np.int64)
        np.maximum.at(longest, np.asarray(owner, dtype=np.int64), per_text)
        # Each text's own window length: ngram, or all of a shorter text.
        wanted = np.where(per_text >= ngram, ngram, np.where(per_text >= min_words, per_text, 0))
        windows = {}
        for length, first, hashes in words.windows(set(wanted[wanted > 0].tolist())):
            text = words.text_of[first]
            keep = wanted[text] == length
            pairs = np.unique(
                np.stack([hashes[keep], np.asarray(owner, dtype=_U64)[text[keep]]], axis=1),
                axis=0,
            )
            windows[length] = (pairs[:, 0].copy(), pairs[:, 1].astype(np.uint32))
        task_of = np.array([tasks.index(e.task) for e in examples], dtype=np.uint32)
        short = longest < min_words
        counts = {
            t: TaskCounts(int(np.sum(task_of == i)), int(np.sum(short & (task_of == i))))
            for i, t in enumerate(tasks)
        }
        return cls(counts, [e.id for e in examples], task_of, windows)

    def task_of(self, example: int) -> str:
        return list(self.tasks)[int(self.example_task[example])]

    def first_match(self, text: str) -> Contamination | None:
        """What one document shares with the examples (see `check`)."""
        return self.check([text])[0]

    @cached_property
    def sieves(self) -> dict[int, np.ndarray]:
        """Per window length, which low bits of a hash some example window has: most of a
        document's windows are ruled out by one lookup each, before any search."""
        out = {}
        for length, (keys, _) in self.windows.items():
            size = 1 << min(26, max(12, (16 * keys.size).bit_length()))
            sieve = np.zeros(size, dtype=bool)
            sieve[keys & _U64(size - 1)] = True
            out[length] = sieve
        return out

    def check(self, texts: Sequence[str | None]) -> list[Contamination | None]:
        """For each text: None when it shares no window with an example, else what it shares
        (the first match is the earliest in the text, the longest window there)."""
        words = Words.of([normalized_bytes(t or "") for t in texts])
        hits = []  # (first word, -length, hash row) per window found
        for length, first, hashes in words.windows(set(self.windows), self.sieves):
            keys = self.windows[length][0]
            row = np.minimum(np.searchsorted(keys, hashes), keys.size - 1)
            found = keys[row] == hashes
            hits.append((first[found], length, row[found]))
        out: list[Contamination | None] = [None] * len(texts)
        if not hits:
            return out
        starts = np.concatenate([h[0] for h in hits])
        lengths = np.concatenate([np.full(h[0].size, h[1]) for h in hits])
        rows = np.concatenate([h[2] for h in hits])
        order = np.lexsort((-lengths, starts))
        first: dict[int, tuple[int, int, int]] = {}  # text -> (first word, length, example)
        found: dict[int, set[int]] = {}
        for i in order.tolist():
            start, length = int(starts[i]), int(lengths[i])
            text = int(words.text_of[start])
            owners = self._owners(length, int(rows[i]))
            first.setdefault(text, (start, length, owners[0]))
            found.setdefault(text, set()).update(owners)
        for text, (start, length, example) in first.items():
            out[text] = Contamination(
                self.task_of(example),
                self.example_ids[example],
                words.text(start, length),
                tuple(sorted(found[text])),
            )
        return out

    def _owners(self, length: int, row: int) -> list[int]:
        """The examples of the window at `row` (several when examples share it)."""
        keys, owners = self.windows[length]
        end = int(np.searchsorted(keys, keys[row], side="right"))
        return sorted(owners[row:end].tolist())

    # -- as one file, written by the driver and read by every worker -----------------------
    def to_bytes(self) -> bytes:
        arrays = {
            "tasks": np.array(list(self.tasks), dtype=str),
            "task_examples": np.array([c.examples for c in self.tasks.values()], dtype=np.int64),
            "task_too_short": np.array([c.too_short for c in self.tasks.values()], dtype=np.int64),
            "example_ids": np.array(self.example_ids, dtype=str),
            "example_task": self.example_task,
        }
        for length, (keys, owners) in self.windows.items():
            arrays[f"keys_{length}"] = keys
            arrays[f"owners_{length}"] = owners
        out = io.BytesIO()
        np.savez(out, **arrays)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EvalIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            names = arrays["tasks"].tolist()
            tasks = {
                name: TaskCounts(int(n), int(s))
                for name, n, s in zip(
                    names, arrays["task_examples"], arrays["task_too_short"], strict=True
                )
            }
            windows = {
                int(key.removeprefix("keys_")): (arrays[key], arrays[f"owners_{key[5:]}"])
                for key in arrays.files
                if key.startswith("keys_")
            }
            return cls(tasks, arrays["example_ids"].tolist(), arrays["example_task"], windows)
