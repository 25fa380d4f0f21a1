from pathlib import Path

import pytest

from filters.langid import LanguageIdentifier, language_decision, normalize_for_langid
from samples import texts


@pytest.fixture(scope="module")
def identifier(lid_model_path):
    return LanguageIdentifier(lid_model_path)


def test_real_model_identifies_the_sample_languages(identifier):
    docs = [texts.ENGLISH["rivers"][0], texts.GERMAN[0], texts.FRENCH[0], texts.SPANISH[0]]
    predictions = identifier.predict(docs)
    assert [lang for lang, _ in predictions] == ["en", "de", "fr", "es"]
    assert all(score > 0.9 for _, score in predictions)


def test_empty_and_multiline_text_get_a_prediction(identifier):
    (lang, score), (lang2, _) = identifier.predict(["", "line one\nline two\n\nthree"])
    assert 0.0 <= score <= 1.0 and lang2 == "en"


def test_normalization_is_ccnet_like():
    # One line, case and accents kept (lid.176 needs them), long text cut.
    assert normalize_for_langid("Ça  coûte\n12,50 €\n") == "Ça  coûte 12,50 €"
    assert len(normalize_for_langid("a" * 50_000)) == 20_000


LABELLED = Path(__file__).resolve().parents[1] / "data" / "langid_lines.tsv"


def test_accuracy_on_labelled_lines_in_twelve_languages(identifier):
    rows = [
        line.split("\t")
        for line in LABELLED.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert all(len(text) >= 50 for _, text in rows)
    languages = {lang for lang, _ in rows}
    assert len(languages) >= 8
    predicted = [lang for lang, _ in identifier.predict([text for _, text in rows])]
    correct = [gold == guess for (gold, _), guess in zip(rows, predicted, strict=True)]
    accuracy = sum(correct) / len(correct)
    print(f"lid.176.ftz accuracy on {len(rows)} lines, {len(languages)} languages: {accuracy:.3f}")
    assert accuracy >= 0.95
    # And no language is sacrificed to the average.
    for language in languages:
        mine = [c for (gold, _), c in zip(rows, correct, strict=True) if gold == language]
        assert sum(mine) / len(mine) >= 0.8, language


def test_language_policy():
    assert language_decision("en", 0.9, ["en"], 0.5).keep
    foreign = language_decision("de", 0.97, ["en", "fr"], 0.5)
    assert (foreign.keep, foreign.rule) == (False, "language")
    assert foreign.detail == "de (0.97) not in en,fr"
    unsure = language_decision("en", 0.3, ["en"], 0.5)
    assert (unsure.keep, unsure.rule, unsure.detail) == (False, "low_score", "en 0.300 < 0.5")
    assert (unsure.value, unsure.threshold) == (0.3, 0.5)
    assert language_decision("zh", 0.1, None, 0.5).keep  # record only
