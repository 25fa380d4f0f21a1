import random

import numpy as np
import pytest

from dedup.cluster import Node, greedy
from dedup.lines import document_line_hashes, normalize_line, remove_lines
from dedup.minhash import (
    choose_banding,
    estimated_jaccard,
    exact_jaccard,
    normalize_for_shingles,
    shingle_hashes,
    signature,
)
from samples import texts

PROSE = "\n\n".join(texts.ENGLISH["rivers"] + texts.ENGLISH["music"])


def python_shingles(text, n=5):
    words = normalize_for_shingles(text).split()
    n = min(n, len(words))
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_vectorized_shingles_match_python_sets():
    r = random.Random(0)
    paragraphs = [p for ps in texts.ENGLISH.values() for p in ps]
    for _ in range(50):
        a = " ".join(r.sample(paragraphs, 3))
        b = " ".join(r.sample(paragraphs, 3))
        sa, sb = python_shingles(a), python_shingles(b)
        assert shingle_hashes(a).size == len(sa)
        expected = len(sa & sb) / len(sa | sb)
        assert exact_jaccard(shingle_hashes(a), shingle_hashes(b)) == pytest.approx(expected)


def test_layout_and_case_do_not_change_shingles():
    reflowed = PROSE.upper().replace(" ", "\n").replace(".", " . ")
    assert np.array_equal(shingle_hashes(PROSE), shingle_hashes(reflowed))


def test_minhash_estimates_jaccard():
    rng = np.random.default_rng(0)
    errors = []
    for seed in range(40):
        items = rng.integers(0, 2**63, size=600, dtype=np.uint64)
        a, b = np.unique(items[:400]), np.unique(items[200:])  # J = 1/3
        errors.append(
            estimated_jaccard(signature(a, seed=seed + 1), signature(b, seed=seed + 1))
            - exact_jaccard(a, b)
        )
    assert abs(np.mean(errors)) < 0.02 and np.std(errors) < 0.06


def test_banding_rarely_misses_a_pair_at_the_threshold():
    for threshold in (0.7, 0.8, 0.9):
        banding = choose_banding(threshold, 128)
        assert banding.bands * banding.rows <= 128
        assert banding.candidate_probability(threshold) >= 0.999
        assert banding.candidate_probability(threshold - 0.4) < 0.25
    assert (choose_banding(0.8, 128).bands, choose_banding(0.8, 128).rows) == (25, 5)


def test_ccnet_line_normalization_and_removal():
    assert (
        normalize_line("  Share THIS article: 12 comments!  ") == "share this article 00 comments"
    )
    text = "Real content here.\nShare this article\n\nMore real content."
    duplicated = document_line_hashes("share this ARTICLE!\nsomething else")
    assert remove_lines(text, duplicated & document_line_hashes(text)) == (
        "Real content here.\n\nMore real content."
    )


def test_rounds_reach_the_greedy_choice():
    for trial in range(100):
        r = random.Random(trial)
        ids = [f"d{i}" for i in range(r.randint(2, 25))]
        priority = {i: (r.random(), i) for i in ids}
        edges = [(a, b, 0.9) for k, a in enumerate(ids) for b in ids[k + 1 :] if r.random() < 0.2]
        nodes = {i: Node(i, priority[i], {}) for i in ids}
        for a, b, s in edges:
            nodes[a].neighbours[b] = (priority[b], s)
            nodes[b].neighbours[a] = (priority[a], s)
        inbox = {i: [] for i in ids}
        for _ in range(60):
            outbox = {i: [] for i in ids}
            for i, node in nodes.items():
                if node.step(inbox[i]):
                    for m in node.neighbours:
                        outbox[m].append((i, node.status))
            inbox = outbox
        got = {i: None if n.status == "k" else n.kept_by for i, n in nodes.items()}
        assert got == greedy(priority, edges)
