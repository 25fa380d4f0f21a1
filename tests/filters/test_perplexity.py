import io
import math
import random

import kenlm
import pytest

from filters.arpa import write_arpa
from filters.perplexity import (
    PerplexityConfig,
    PerplexityScorer,
    bucket_of,
    cutoffs_from_quantiles,
    normalize_line,
    perplexity_verdict,
)
from samples import registers, texts
from tests.conftest import ROOT

LM_DIR = ROOT / "samples" / "lm"


@pytest.fixture(scope="module")
def scorer():
    return PerplexityScorer(str(LM_DIR / "wikipedia.arpa"), str(LM_DIR / "wikipedia.sp.model"))


def test_written_arpa_is_a_normalized_model_kenlm_loads(tmp_path):
    sentences = [p.lower().split() for ps in texts.ENGLISH.values() for p in ps]
    buffer = io.StringIO()
    write_arpa(sentences, buffer, order=3)
    path = tmp_path / "model.arpa"
    path.write_text(buffer.getvalue())
    model = kenlm.Model(str(path))
    assert model.order == 3
    vocabulary = {w for s in sentences for w in s} | {"</s>", "<unk>"}
    for context in (["the"], ["baking", "bread"], ["never-seen"]):
        state = kenlm.State()
        model.NullContextWrite(state)
        for word in context:
            out = kenlm.State()
            model.BaseScore(state, word, out)
            state = out
        total = 0.0
        for word in vocabulary:
            total += 10 ** model.BaseScore(state, word, kenlm.State())
        assert total == pytest.approx(1.0, abs=1e-4), context
    # Seen text is more likely than the same words shuffled.
    seen = " ".join(sentences[0])
    shuffled = sentences[0][:]
    random.Random(0).shuffle(shuffled)
    assert model.perplexity(seen) < model.perplexity(" ".join(shuffled))


def test_normalization_is_ccnets():
    assert normalize_line("  Ça coûte 12,50 € «vraiment»\t") == 'ca coute 00,00 € "vraiment"'
    assert normalize_line("東京。テスト、") == "東京.テスト,"


def test_in_domain_text_has_lower_perplexity(scorer):
    r = random.Random("held-out")
    articles = [registers.encyclopedia_article(r)[1] for _ in range(5)]
    web = [registers.web_page(r)[1] for _ in range(5)]
    article_pp = [scorer.perplexity(t) for t in articles]
    web_pp = [scorer.perplexity(t) for t in web]
    assert max(article_pp) < min(web_pp)
    assert math.isinf(scorer.perplexity("\n \n"))


def test_buckets_and_verdicts():
    cutoffs = (100.0, 300.0)
    assert [bucket_of(p, cutoffs) for p in (50, 100, 299, 300)] == [
        "head",
        "middle",
        "middle",
        "tail",
    ]
    assert perplexity_verdict(50, cutoffs, ["head", "middle"]).keep
    tail = perplexity_verdict(400, cutoffs, ["head", "middle"])
    assert (tail.rule, tail.value, tail.threshold) == ("tail", 400, 300)
    assert perplexity_verdict(150, cutoffs, ["head"]).rule == "middle"


def test_cutoffs_from_quantiles_interpolate():
    quantiles = [float(x) for x in range(0, 1001)]  # min..max in per-mille steps
    assert cutoffs_from_quantiles(quantiles, (30, 60)) == pytest.approx((300.0, 600.0))
    assert cutoffs_from_quantiles([], (30, 60)) is None


def test_config_checks_its_numbers():
    with pytest.raises(ValueError, match="percentiles"):
        PerplexityConfig(model="m", tokenizer="t", percentiles=(60, 30))
    with pytest.raises(ValueError, match="keep"):
        PerplexityConfig(model="m", tokenizer="t", keep=[])
