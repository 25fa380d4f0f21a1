import numpy as np
import pytest

from pipelines.mixture import (
    HISTOGRAM_BINS,
    HoldOutTally,
    boundary,
    bucket_of,
    expected_training_tokens,
    held_out_fraction,
    is_held_out,
    pack,
    plan_mixture,
    split_total,
    take_prefix,
)
from pipelines.shards import BOS_ID, EOS_ID


def test_split_total_is_exact_and_proportional():
    weights = {
        "a": 67 / 95.5,
        "b": 15 / 95.5,
        "c": 4.5 / 95.5,
        "d": 4.5 / 95.5,
        "e": 2.5 / 95.5,
        "f": 2 / 95.5,
    }
    for total in (1, 7, 1000, 999_983, 10**12):
        targets = split_total(total, weights)
        assert sum(targets.values()) == total
        for name, w in weights.items():
            assert abs(targets[name] - total * w) < 1


def test_plan_reproduces_the_papers_epochs_column():
    # Table 1: tokens available per source (disk size scaled to tokens) and 1.4T sampled.
    paper_epochs = {
        "commoncrawl": 1.10,
        "c4": 1.06,
        "github": 0.64,
        "wikipedia": 2.45,
        "books": 2.23,
        "arxiv": 1.06,
        "stackexchange": 1.03,
    }
    weights = {
        "commoncrawl": 0.67,
        "c4": 0.15,
        "github": 0.045,
        "wikipedia": 0.045,
        "books": 0.045,
        "arxiv": 0.025,
        "stackexchange": 0.02,
    }
    total = 1_400_000_000_000
    available = {k: round(total * weights[k] / e) for k, e in paper_epochs.items()}
    plans = plan_mixture(total, weights, available)
    for name, epochs in paper_epochs.items():
        assert plans[name].epochs == pytest.approx(epochs, abs=1e-6)
        assert (
            plans[name].full_epochs * plans[name].available_tokens + plans[name].remainder_tokens
            == plans[name].target_tokens
        )


def test_boundary_finds_the_bucket_where_the_budget_runs_out():
    histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
    histogram[[3, 10, 20]] = [100, 50, 70]
    assert boundary(histogram, 100) == (3, 100)
    assert boundary(histogram, 101) == (10, 1)
    assert boundary(histogram, 220) == (20, 70)
    assert bucket_of(0.0) == 0 and bucket_of(0.999999999) == HISTOGRAM_BINS - 1


def test_take_prefix_spends_the_budget_exactly():
    docs = [(0.3, "b", np.arange(10)), (0.1, "a", np.arange(5)), (0.7, "c", np.arange(8))]
    out = list(take_prefix(docs, 7 + 12 + 4))  # a (5+2) + b (10+2) + 4 tokens of c
    assert [(doc_id, len(tokens), complete) for doc_id, tokens, complete in out] == [
        ("a", 5, True),
        ("b", 10, True),
        ("c", 3, False),
    ]
    spent = sum(len(t) + (2 if complete else 1) for _, t, complete in out)
    assert spent == 23


def test_pack_cuts_rows_and_counts_tokens_per_source():
    instances = [
        (0.2, 0, "x", np.array([5, 6, 7]), True),
        (0.1, 1, "y", np.array([8, 9]), True),
        (0.9, 0, "z", np.array([10, 11, 12, 13]), False),
    ]
    rows, per_source, docs = pack(instances, row_tokens=4)
    stream = [BOS_ID, 8, 9, EOS_ID, BOS_ID, 5, 6, 7, EOS_ID, BOS_ID, 10, 11, 12, 13]
    assert rows.tolist() == [stream[0:4], stream[4:8], stream[8:12]]
    assert per_source.tolist() == [4 + 4, 4]  # y's 4 tokens; x's 5 and 3 of z's in the rows
    assert docs.tolist() == [2, 1]


def test_a_mix_rerun_leaves_the_version_a_training_run_reads(built_sample, tmp_path):
    """A training run reads one committed version; a rerun of mix commits a new version
    beside it and never touches the files of the old one, which a resumed run reads again."""
    import hashlib
    import shutil

    from flows.recipe import load_recipe
    from pipelines.shards import ShardReader, committed_version, shards_dir, versions
    from pipelines.stages import STAGE_CLASSES, StageContext, run_stage
    from tests.conftest import write_recipe

    recipe = load_recipe(built_sample)
    path = write_recipe(tmp_path, mixture={**recipe.mixture.model_dump(), "keep_versions": 2})
    shutil.copytree(recipe.workdir, tmp_path / "work")
    mix_dir = str(tmp_path / "work" / "mix" / "_all")
    first, version = shards_dir(mix_dir)
    reader = ShardReader(first)
    before = np.stack([reader[i] for i in range(len(reader))])
    digests = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in reader.paths}

    # What a run killed while writing validation shards leaves: a version without mixture.json.
    killed = tmp_path / "work" / "mix" / "_all" / "v00000000T000000Z-killed" / "validation" / "c4"
    killed.mkdir(parents=True)
    (killed / "shard-00000.arrow").write_bytes(b"half")
    ctx = StageContext.from_recipe(load_recipe(path))
    run_stage(STAGE_CLASSES["mix"](), ctx, list(recipe.sources), force=True)
    assert not killed.parent.parent.exists()
    newest = committed_version(mix_dir)
    assert newest != version and versions(mix_dir) == sorted([version, newest])
    assert {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in reader.paths} == digests
    np.testing.assert_array_equal(np.stack([reader[i] for i in range(len(reader))]), before)
    again, _ = shards_dir(mix_dir, version)  # what --resume reads
    np.testing.assert_array_equal(ShardReader(again)[5], before[5])
    # A third version pushes the oldest out (keep_versions: 2).
    run_stage(STAGE_CLASSES["mix"](), ctx, list(recipe.sources), force=True)
    assert version not in versions(mix_dir) and len(versions(mix_dir)) == 2


def test_held_out_amounts_are_fractions_of_documents():
    # A number below 1 is the fraction itself; 1 or more is tokens of what the source offers.
    assert held_out_fraction(0.2, 5000) == 0.2
    assert held_out_fraction(1000, 5000) == 0.2
    assert held_out_fraction(10**7, 5000) == 1.0  # the rule still keeps one to train
    assert held_out_fraction(0.0, 5000) == 0.0
    # `llama-recipe plan` counts what is expected to train.
    assert expected_training_tokens(5000, 1000) == 4000
    assert expected_training_tokens(5000, 0.1) == 4500
    assert expected_training_tokens(5000, 0.0) == 5000


def test_the_held_out_tally_counts_what_the_rule_holds_out():
    """The one-pass tally of a source, merged in any order, knows how many tokens the
    per-document rule holds out: at least one document of two or more, never all."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 50):
        docs = [(float(rng.random()), f"d{k}", int(rng.integers(3, 40))) for k in range(n)]
        for fraction in (1e-9, 0.3, 0.999999):
            tallies = [HoldOutTally() for _ in range(3)]
            for k, (u, doc_id, tokens) in enumerate(docs):
                tallies[k % 3] = tallies[k % 3].add(u, doc_id, tokens, fraction)
            tally = tallies[2].merge(tallies[0]).merge(tallies[1])
            held = [t for u, i, t in docs if is_held_out(u, i, fraction, tally)]
            assert tally.documents == n and tally.tokens == sum(t for *_, t in docs)
            assert tally.held_out_tokens(fraction) == sum(held)
            assert 1 <= len(held) < n if n >= 2 else not held


def token_grams(tokens, k: int = 16) -> set[tuple[int, ...]]:
    tokens = [int(t) for t in tokens]
    return {tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def read_stream(reader) -> np.ndarray:
    """Every row of a shard reader in order, as one stream of token ids."""
    return np.concatenate([reader[i] for i in range(len(reader))]).astype(np.int64)


def whole_documents(stream: np.ndarray) -> set[tuple[int, ...]]:
    """The documents a stream holds from BOS to EOS (each one's tokens between them)."""
    pieces = np.split(stream, np.flatnonzero(stream == BOS_ID))
    return {tuple(int(t) for t in p[1:-1]) for p in pieces if len(p) > 1 and p[-1] == EOS_ID}


def test_held_out_documents_never_reach_the_training_shards(built_sample):
    """The sample recipe holds out a fifth of each source's documents (at least one): their
    ids are recorded, their tokens and text are in the validation shards and nowhere in the
    training shards, and the mixture counts only the rest as available for training."""
    import os

    import pyarrow as pa
    import sentencepiece as spm

    from flows.recipe import load_recipe
    from pipelines.mixture import available_tokens
    from pipelines.shards import ShardReader, validation_path, validation_readers
    from pipelines.store import StageStore, match_files
    from tests.conftest import mix_shards

    recipe = load_recipe(built_sample)
    store = StageStore(recipe.workdir)
    version_dir = mix_shards(recipe.workdir)
    training = ShardReader(version_dir)
    training.verify_all()
    mixture = training.mixture
    sp = spm.SentencePieceProcessor(model_file=store.tokenizer_model())
    stream = read_stream(training)
    training_grams = token_grams(stream)
    training_docs = whole_documents(stream)
    training_texts = {sp.decode(list(d)) for d in training_docs}
    held_readers = validation_readers(version_dir)
    assert set(held_readers) == set(mixture["validation"]) == set(recipe.sources)
    docs = {}  # source -> id -> tokens
    for source in recipe.sources:
        for path in match_files(store.parts("tokenize", source, ".arrow")):
            for row in pa.ipc.open_file(path).read_all().to_pylist():
                docs.setdefault(source, {})[row["id"]] = tuple(row["tokens"])
    # The sample's documents share paragraphs: the 16-token windows found in one document
    # only show where that document is, even in a piece of it.
    seen = {}
    for i, tokens in ((i, t) for by_id in docs.values() for i, t in by_id.items()):
        for gram in token_grams(tokens):
            seen[gram] = None if gram in seen else i
    own = {}
    for gram, i in seen.items():
        if i is not None:
            own.setdefault(i, set()).add(gram)

    for source, by_id in docs.items():
        record = mixture["validation"][source]
        folder = validation_path(version_dir, source)
        held = [
            line
            for name in record["ids"]
            for line in open(os.path.join(folder, name)).read().splitlines()
        ]
        rest = [i for i in by_id if i not in held]
        assert len(held) == len(set(held)) == record["documents"] and set(held) <= set(by_id)
        assert 1 <= len(held) < len(by_id)  # at least one, never all
        assert record["tokens"] == sum(len(by_id[i]) + 2 for i in held)
        training_tokens = sum(len(by_id[i]) + 2 for i in rest)
        assert mixture["sources"][source]["available_tokens"] == training_tokens
        tokenize = store.read_manifest("tokenize", source)
        assert training_tokens + record["tokens"] == available_tokens(tokenize)
        reader = held_readers[source]
        reader.verify_all()  # sha256 and rows as mixture.json records them
        assert len(reader) == record["rows"] > 0
        held_stream = read_stream(reader)

        # The ids the training shards show, by whole documents or by windows of their own.
        used = {i for i in by_id if by_id[i] in training_docs}
        used |= {i for i in by_id if own.get(i, set()) & training_grams}
        assert used and not used & set(held), source
        assert len(used) >= min(len(rest), 2)
        for i in held:  # nor as text
            assert sp.decode(list(by_id[i])) not in training_texts
        # What the validation shards show is held-out documents (a row's worth may be lost).
        shown = {i for i in by_id if by_id[i] in whole_documents(held_stream)}
        shown |= {i for i in by_id if own.get(i, set()) & token_grams(held_stream)}
        assert shown <= set(held) and len(shown) >= len(held) - 1, source
