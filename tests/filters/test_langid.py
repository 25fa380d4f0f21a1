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
    assert normalize_for_langid("Ça  coûte\n12,50 €") == "ca coute 00,00 €"


def test_language_policy():
    assert language_decision("en", 0.9, ["en"], 0.5) == (True, None, None)
    keep, reason, detail = language_decision("de", 0.97, ["en"], 0.5)
    assert (keep, reason) == (False, "langid:language") and detail.startswith("de (0.97)")
    keep, reason, _ = language_decision("en", 0.3, ["en"], 0.5)
    assert (keep, reason) == (False, "langid:low_score")
    assert language_decision("zh", 0.1, None, 0.5)[0]  # record only
