from filters.heuristics import check_quality
from pipelines.recipe import QualityConfig
from samples import texts

CONFIG = QualityConfig()
GOOD = "\n\n".join(texts.ENGLISH["bread"])


def test_good_prose_is_kept_with_its_word_count():
    verdict = check_quality(GOOD, CONFIG)
    assert verdict.keep and verdict.reason is None
    assert verdict.word_count == len(GOOD.split())


def test_each_rule_names_itself_and_the_value():
    cases = {
        "quality:min_words": texts.BOILERPLATE_PAGES[0],
        "quality:symbol_word_ratio": texts.KEYWORD_SPAM,
        "quality:alpha_words": "Measurements\n" + texts.NUMBER_TABLE,
        "quality:lorem_ipsum": GOOD + "\n" + texts.LOREM_IPSUM,
        "quality:mean_word_length": " ".join(["a b c"] * 40),
    }
    for reason, text in cases.items():
        verdict = check_quality(text, CONFIG)
        assert not verdict.keep, reason
        assert verdict.reason == reason
        assert verdict.detail


def test_thresholds_are_configurable_and_rules_can_be_disabled():
    short = "one two three four five six"
    assert not check_quality(short, CONFIG).keep
    assert check_quality(short, QualityConfig(min_words=5)).keep
    assert check_quality(short, QualityConfig(enabled=False)).keep
