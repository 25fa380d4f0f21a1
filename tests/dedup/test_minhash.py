import random

import numpy as np
import pytest

from dedup.cluster import UNDECIDED, Node, greedy, resolve_locally
from dedup.lines import (
    document_line_hashes,
    normalize_line,
    normalized_line_bytes,
    remove_lines,
    repeated_entries,
    repeated_line_numbers,
    without_line_numbers,
)
from dedup.minhash import (
    choose_banding,
    estimated_jaccard,
    exact_jaccard,
    normalize_for_shingles,
    shared_rows,
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


def test_ascii_lines_take_a_faster_path_to_the_same_normalization():
    """Every pair of ASCII characters (white space runs, punctuation next to digits...) and
    random ASCII strings normalize byte for byte as the regular expressions do; other lines
    take the regular expressions."""
    chars = [chr(i) for i in range(128)]
    for a in chars:
        for b in chars:
            assert normalized_line_bytes(a + b) == normalize_line(a + b).encode()
    r = random.Random(5)
    for _ in range(20000):
        line = "".join(r.choice(chars) for _ in range(r.randint(0, 16)))
        assert normalized_line_bytes(line) == normalize_line(line).encode()
    assert normalized_line_bytes("Ünïcode, 12 ½ — ok!") == "ünïcode 00 ½ ok".encode()


def test_lines_found_in_two_documents_and_their_removal_by_number():
    hashes = np.array([7, 3, 7, 9, 3, 5], dtype=np.uint64)
    assert repeated_entries(hashes).tolist() == [True, True, True, False, True, False]
    text = "Real content here.\nShare this article\n\nMore real content.\nshare THIS article!"
    duplicated = document_line_hashes("share this ARTICLE")
    numbers = repeated_line_numbers(text, duplicated)
    assert numbers == [1, 4]
    assert without_line_numbers(text, set(numbers)) == remove_lines(text, duplicated)


def test_shared_rows_are_the_buckets_of_two_or_more():
    rows = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4], [1, 2]], dtype=np.uint32)
    members, buckets = shared_rows(rows)
    assert members.tolist() == [0, 1, 2, 4, 5]
    groups = {}
    for member, bucket in zip(members.tolist(), buckets.tolist(), strict=True):
        groups.setdefault(bucket, []).append(member)
    assert sorted(groups.values()) == [[0, 2, 5], [1, 4]]
    assert shared_rows(rows[:0])[0].size == 0


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


def run_rounds(nodes: dict[str, Node], rounds: int, leave: bool) -> dict[str, tuple]:
    """KeepOrRemove by hand: `rounds` rounds (settled nodes leaving them, if `leave`), the
    last news taken in, the nodes still open finished in order."""
    live, inbox = dict(nodes), {i: [] for i in nodes}
    for _ in range(rounds):
        outbox = {i: [] for i in nodes}
        for i, node in list(live.items()):
            if node.step(inbox[i]):
                for m in node.neighbours:
                    outbox[m].append((i, node.status))
            if leave and node.settled():
                del live[i]
        inbox = outbox
    for i, node in live.items():
        node.absorb(inbox[i])
    resolve_locally([n for n in live.values() if n.status == UNDECIDED])
    return {i: (n.status, n.kept_by) for i, n in nodes.items()}


def test_settled_nodes_leave_the_rounds_without_changing_any_decision():
    """Whatever the graph and the number of rounds, letting settled nodes leave gives every
    node the same status and the same survivor as keeping all of them in every round."""
    for trial in range(200):
        r = random.Random(trial)
        ids = [f"d{i}" for i in range(r.randint(2, 20))]
        priority = {i: (r.random(), i) for i in ids}
        edges = [
            (a, b, r.random()) for k, a in enumerate(ids) for b in ids[k + 1 :] if r.random() < 0.25
        ]

        rounds = r.randint(1, 8)
        outcomes = []
        for leave in (True, False):
            nodes = {i: Node(i, priority[i], {}) for i in ids}
            for a, b, s in edges:
                nodes[a].neighbours[b] = (priority[b], s)
                nodes[b].neighbours[a] = (priority[a], s)
            outcomes.append(run_rounds(nodes, rounds, leave))
        assert outcomes[0] == outcomes[1]
