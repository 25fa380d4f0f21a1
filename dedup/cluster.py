"""Which near-duplicates survive: the greedy choice by priority, computed as a distributed
algorithm.

The reference is sequential: go through the documents from the highest priority down; keep a
document unless one of its (verified) near-duplicates is already kept. That result is also
what repeated local rounds reach, which is how the dedup stage computes it in Beam: in each
round every undecided document whose higher-priority neighbours are all removed is kept, and
every undecided document with a kept neighbour is removed. State travels with the node and
news travels as messages to neighbours, one GroupByKey per round; nothing holds more than
one document's neighbourhood, and a node whose decision no news can change any more
(`settled`) leaves the rounds. Every removed document has a kept neighbour above the
threshold, so no removal lacks its surviving near-duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

UNDECIDED, KEPT, REMOVED = "u", "k", "r"

Priority = tuple  # smaller sorts first = wins; ends with the id, so never tied


def keep_priority(
    doc: dict[str, Any], rules: Sequence[str], source_rank: dict[str, int]
) -> Priority:
    """The sort key of the keep rule: by source priority, then quality score, then length,
    then id (the rules listed in the recipe, in order; the id always breaks ties)."""
    key: list[Any] = []
    for rule in rules:
        if rule == "source_priority":
            key.append(source_rank.get(doc.get("source") or "", len(source_rank)))
        elif rule == "quality_score":
            key.append(-(doc.get("quality_score") or 0.0))
        elif rule == "length":
            key.append(-len(doc.get("text") or ""))
    key.append(doc["id"])
    return tuple(key)


@dataclass
class Node:
    id: Any  # the document's id, or any key naming it uniquely
    priority: Priority
    neighbours: dict[str, tuple[Priority, float]]  # id -> (priority, similarity)
    status: str = UNDECIDED
    kept_by: tuple[str, float] | None = None  # removed: the kept neighbour and its similarity
    known: dict[str, str] = field(default_factory=dict)  # decided neighbours

    def best_kept(self, kept: Iterable[str]) -> tuple[str, float]:
        """The highest-priority of these kept neighbours, with its similarity."""
        best = min(kept, key=lambda n: self.neighbours[n][0])
        return best, self.neighbours[best][1]

    def absorb(self, messages: Iterable[tuple[str, str]]) -> None:
        """Take in the neighbours' news without deciding anything."""
        for sender, status in messages:
            self.known[sender] = status
        kept = [n for n, s in self.known.items() if s == KEPT]
        if self.status == REMOVED and kept:
            # A better neighbour kept later: record the best one, as the greedy order would.
            self.kept_by = self.best_kept(kept)

    def settled(self) -> bool:
        """Whether no news can change this node any more: kept, or removed with every
        neighbour of higher priority than its survivor already decided (only such a one,
        kept later, would become its better survivor)."""
        if self.status == KEPT:
            return True
        if self.status == REMOVED and self.kept_by is not None:
            survivor = self.neighbours[self.kept_by[0]][0]
            return all(n in self.known for n, (p, _) in self.neighbours.items() if p < survivor)
        return False

    def step(self, messages: Iterable[tuple[str, str]]) -> bool:
        """One round: learn the neighbours' news, decide if possible; True if decided now."""
        self.absorb(messages)
        if self.status != UNDECIDED:
            return False
        kept = [n for n, s in self.known.items() if s == KEPT]
        if kept:
            self.status, self.kept_by = REMOVED, self.best_kept(kept)
            return True
        if all(
            self.known.get(n) == REMOVED
            for n, (priority, _) in self.neighbours.items()
            if priority < self.priority
        ):
            self.status = KEPT
            return True
        return False


def greedy(
    priorities: dict[str, Priority], edges: Iterable[tuple[str, str, float]]
) -> dict[str, tuple[str, float] | None]:
    """The sequential reference: id -> None (kept) or (kept neighbour, similarity)."""
    neighbours: dict[str, dict[str, float]] = {i: {} for i in priorities}
    for a, b, similarity in edges:
        neighbours[a][b] = similarity
        neighbours[b][a] = similarity
    decision: dict[str, tuple[str, float] | None] = {}
    for node in sorted(priorities, key=priorities.__getitem__):
        kept = [n for n in neighbours[node] if n in decision and decision[n] is None]
        if kept:
            best = min(kept, key=priorities.__getitem__)
            decision[node] = (best, neighbours[node][best])
        else:
            decision[node] = None
    return decision


def resolve_locally(nodes: list[Node]) -> None:
    """Finish the nodes still undecided after the distributed rounds, in priority order (only
    the few on long chains of alternating priorities ever get here)."""
    by_id = {n.id: n for n in nodes}
    for node in sorted(nodes, key=lambda n: n.priority):
        if node.status != UNDECIDED:
            continue
        kept = [
            m
            for m in node.neighbours
            if node.known.get(m) == KEPT or (m in by_id and by_id[m].status == KEPT)
        ]
        if kept:
            node.status, node.kept_by = REMOVED, node.best_kept(kept)
        else:
            node.status = KEPT
