"""The mixture's arithmetic, Beam-free: how many tokens each source gives (whole epochs, then
an exact part of one more), where a partial epoch's budget runs out in the hash histogram, and
how document token streams are cut into rows and rows into shards. Used by the mix stage and by
`llama-recipe plan`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.errors import UserError
from pipelines.shards import BOS_ID, EOS_ID

HISTOGRAM_BINS = 1 << 16


@dataclass(frozen=True)
class SourcePlan:
    source: str
    available_tokens: int  # document tokens plus BOS and EOS per document
    target_tokens: int
    full_epochs: int
    remainder_tokens: int  # taken from one more, partial epoch

    @property
    def epochs(self) -> float:
        return self.target_tokens / self.available_tokens if self.available_tokens else 0.0


def split_total(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer token targets that sum to `total` exactly (largest remainders)."""
    raw = {name: total * w for name, w in weights.items()}
    targets = {name: math.floor(v) for name, v in raw.items()}
    short = total - sum(targets.values())
    for name in sorted(raw, key=lambda n: (targets[n] - raw[n], n))[:short]:
        targets[name] += 1
    return targets


def plan_mixture(
    total_tokens: int, weights: dict[str, float], available: dict[str, int]
) -> dict[str, SourcePlan]:
    """Each source's plan from the tokens it offers for training (`available`)."""
    return {
        name: plan_source(name, target, available[name])
        for name, target in split_total(total_tokens, weights).items()
    }


def plan_source(source: str, target: int, available: int) -> SourcePlan:
    """Whole epochs of the `available` tokens, then the rest of `target` from one more."""
    if available <= 0:
        raise UserError(f"mix: source {source!r} has no tokens left to sample from")
    full, remainder = divmod(target, available)
    return SourcePlan(source, available, target, full, remainder)


def available_tokens(tokenize_manifest: dict[str, Any]) -> int:
    """Tokens a source offers the mix: its documents' tokens plus BOS and EOS for each."""
    return tokenize_manifest.get("tokens", 0) + 2 * tokenize_manifest["counts"]["kept"]


# -- the validation split: documents held out of training, per source ----------------------


def held_out_fraction(amount: float, available: int) -> float:
    """The share of a source's documents held out for validation (`mixture.validation`): the
    amount itself when it is a fraction (< 1), else that many of its `available` tokens."""
    if amount < 1:
        return max(amount, 0.0)
    return min(amount / available, 1.0) if available > 0 else 0.0


def expected_training_tokens(available: int, amount: float) -> int:
    """The tokens a source is expected to keep for training when `amount` is held out (for
    `llama-recipe plan`; the mix counts them exactly, document by document)."""
    return available - round(available * held_out_fraction(amount, available))


@dataclass(frozen=True)
class HoldOutTally:
    """What the held-out rule needs of a source, counted in one pass over its documents:
    how many, the first and the last by hash (hash, id, tokens with BOS and EOS), the tokens
    of all of them and of those whose hash is below the source's fraction."""

    documents: int = 0
    smallest: tuple[float, str, int] | None = None
    largest: tuple[float, str, int] | None = None
    tokens: int = 0
    tokens_below: int = 0

    def add(self, u: float, doc_id: str, tokens: int, fraction: float) -> HoldOutTally:
        """This tally with one more document (its hash, id and tokens with BOS and EOS)."""
        doc = (u, doc_id, tokens)
        below = tokens if u < fraction else 0
        return HoldOutTally(1, doc, doc, tokens, below).merge(self)

    def merge(self, other: HoldOutTally) -> HoldOutTally:
        ends = [t for t in (self, other) if t.documents]
        return HoldOutTally(
            self.documents + other.documents,
            min((t.smallest for t in ends), default=None),
            max((t.largest for t in ends), default=None),
            self.tokens + other.tokens,
            self.tokens_below + other.tokens_below,
        )

    def held_out_tokens(self, fraction: float) -> int:
        """The tokens of the documents `is_held_out` holds out."""
        if fraction <= 0 or self.documents < 2:
            return 0
        assert self.smallest is not None and self.largest is not None
        held = self.tokens_below
        held += self.smallest[2] if self.smallest[0] >= fraction else 0
        held -= self.largest[2] if self.largest[0] < fraction else 0
        return held


def is_held_out(u: float, doc_id: str, fraction: float, tally: HoldOutTally) -> bool:
    """Whether a document (its hash `u` in [0, 1) and id) goes to validation: its hash is below
    the fraction; in a source of two documents or more the one of the smallest hash always
    goes and the one of the largest never does, so that a source that holds some out holds
    at least one out and still trains on at least one."""
    if fraction <= 0 or tally.documents < 2 or (u, doc_id) == tally.largest[:2]:
        return False
    return u < fraction or (u, doc_id) == tally.smallest[:2]


def doc_cost(num_tokens: int) -> int:
    return num_tokens + 2  # BOS + document + EOS


def boundary(histogram: np.ndarray, remainder: int) -> tuple[int, int]:
    """(bucket, tokens still wanted inside it) where the partial epoch's budget runs out."""
    cumulative = np.cumsum(histogram)
    bucket = int(np.searchsorted(cumulative, remainder, side="left"))
    before = int(cumulative[bucket - 1]) if bucket > 0 else 0
    return bucket, remainder - before


def bucket_of(u: float) -> int:
    return min(int(u * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)


def take_prefix(
    docs: list[tuple[float, str, np.ndarray]], budget: int
) -> Iterator[tuple[str, np.ndarray, bool]]:
    """Documents in hash order until `budget` tokens; the last one cut to fit exactly.

    Yields (id, tokens, complete). A cut document keeps its BOS but gets no EOS, since it
    does not end there.
    """
    for _, doc_id, tokens in sorted(docs, key=lambda d: (d[0], d[1])):
        if budget <= 0:
            return
        cost = doc_cost(len(tokens))
        if cost <= budget:
            budget -= cost
            yield doc_id, tokens, True
        else:
            if budget >= 2:
                yield doc_id, tokens[: budget - 1], False
            return


def pack(
    instances: list[tuple[float, int, str, np.ndarray, bool]], row_tokens: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate documents (in hash order) with BOS/EOS and cut into rows.

    Returns (rows [n, row_tokens], tokens per source index, documents per source index);
    the tail that does not fill a row is left out.
    """
    n_sources = 1 + max((x[1] for x in instances), default=0)
    stream, owner, docs_per_source = stream_of(instances, n_sources)
    rows, tokens_per_source, _ = cut_rows(stream, owner, row_tokens, n_sources)
    return rows, tokens_per_source, docs_per_source


def stream_of(
    instances: list[tuple[float, int, str, np.ndarray, bool]], n_sources: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Documents (in hash order) with BOS/EOS as one token stream, the source index of every
    token, and documents per source index."""
    instances = sorted(instances, key=lambda x: (x[0], x[2]))
    pieces, owners = [], []
    docs_per_source = np.zeros(n_sources, dtype=np.int64)
    for _, source_index, _, tokens, complete in instances:
        piece = np.concatenate([[BOS_ID], tokens, [EOS_ID]] if complete else [[BOS_ID], tokens])
        pieces.append(piece.astype(np.uint32))
        owners.append(np.full(len(piece), source_index, dtype=np.int16))
        docs_per_source[source_index] += 1
    stream = np.concatenate(pieces) if pieces else np.zeros(0, np.uint32)
    owner = np.concatenate(owners) if owners else np.zeros(0, np.int16)
    return stream, owner, docs_per_source


def cut_rows(
    stream: np.ndarray, owner: np.ndarray, row_tokens: int, n_sources: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(rows [n, row_tokens], tokens per source index in them, the tail (stream, owner) that
    does not fill a row)."""
    n_rows = len(stream) // row_tokens
    used = n_rows * row_tokens
    tokens_per_source = np.bincount(owner[:used], minlength=n_sources)
    return (
        stream[:used].reshape(n_rows, row_tokens),
        tokens_per_source,
        (stream[used:], owner[used:]),
    )


def row_offsets(counts: list[tuple[int, int]]) -> dict[int, int]:
    """The global index of each group's first row: groups in index order."""
    offsets, start = {}, 0
    for index, n in sorted(counts):
        offsets[index] = start
        start += n
    return offsets


def shard_pieces(
    packed: tuple[int, np.ndarray], counts: list[tuple[int, int]], rows_per_shard: int
) -> Iterator[tuple[int, tuple[int, np.ndarray]]]:
    """A group's rows cut where shard boundaries fall: (shard, (global first row, rows))."""
    index, rows = packed
    start = row_offsets(counts)[index]
    done = 0
    while done < len(rows):
        shard, within = divmod(start + done, rows_per_shard)
        take = min(rows_per_shard - within, len(rows) - done)
        yield shard, (start + done, rows[done : done + take])
        done += take
