import pytest

from filters.gopher import (
    GopherQualityConfig,
    GopherRepetitionConfig,
    gopher_quality,
    gopher_repetition,
)
from samples import texts

PROSE = "\n\n".join(texts.ENGLISH["rivers"])
QUALITY = GopherQualityConfig()
REPETITION = GopherRepetitionConfig()


def test_ordinary_prose_passes_every_rule():
    assert gopher_quality(PROSE, QUALITY).keep
    assert gopher_repetition(PROSE, REPETITION).keep


@pytest.mark.parametrize(
    "text, rule, comparison",
    [
        ("Too short to be a page.", "word_count", "<"),
        (" ".join(["a b c to the of"] * 20), "mean_word_length", "<"),
        (" ".join(["incomprehensibilities"] * 60) + " the of", "mean_word_length", ">"),
        (PROSE + " " + "#tag " * 200, "hash_ratio", ">"),
        (
            "\n".join(f"- item number {i} of the list with things" for i in range(60)),
            "bullet_lines_ratio",
            ">",
        ),  # fmt: skip
        (
            "\n".join(f"and then the story of {i} goes on..." for i in range(60)),
            "ellipsis_ratio",
            ">",
        ),  # fmt: skip
        (
            " ".join(f"{1000 + i} {2000 + i} {3000 + i} items" for i in range(30)) + " the of",
            "alpha_words_ratio",
            "<",
        ),  # fmt: skip
        (" ".join(["bread flour water salt yeast oven"] * 12), "stop_words", "<"),
    ],
)
def test_each_rule_reports_value_and_threshold(text, rule, comparison):
    verdict = gopher_quality(text, QUALITY)
    assert not verdict.keep
    assert verdict.rule == rule and verdict.comparison == comparison
    assert verdict.detail == f"{verdict.detail.split()[0]} {comparison} {verdict.detail.split()[2]}"
    if comparison == "<":
        assert verdict.value < verdict.threshold
    else:
        assert verdict.value > verdict.threshold


def test_thresholds_are_configurable_and_none_disables_a_rule():
    short = "A short but perfectly good note about the river and the bridge."
    assert gopher_quality(short, QUALITY).rule == "word_count"
    assert gopher_quality(short, GopherQualityConfig(min_words=5)).keep
    assert gopher_quality(short, GopherQualityConfig(min_words=None)).keep


def test_stop_words_count_distinct_words():
    text = " ".join(["the river runs fast"] * 20)  # only "the"
    verdict = gopher_quality(text, QUALITY)
    assert (verdict.rule, verdict.value, verdict.threshold) == ("stop_words", 1, 2)


@pytest.mark.parametrize(
    "text, rule",
    [
        (
            "\n\n".join([texts.ENGLISH["music"][0]] * 3 + [texts.ENGLISH["music"][1]]),
            "duplicate_paragraph_fraction",
        ),  # fmt: skip
        (
            "\n".join(["Home", "About us", "Contact", PROSE] + ["Home", "About us", "Contact"] * 3),
            "duplicate_line_fraction",
        ),  # fmt: skip
        (" ".join(["buy cheap shoes online"] * 40), "top_2gram_char_fraction"),
    ],
)
def test_repetition_rules(text, rule):
    verdict = gopher_repetition(text, REPETITION)
    assert not verdict.keep and verdict.rule == rule
    assert verdict.value > verdict.threshold


def test_repeated_passage_inside_a_page_is_a_duplicate_ngram():
    passage = texts.ENGLISH["computing"][0]
    other = texts.ENGLISH["health"][0]
    # The passage comes back inside another paragraph: no duplicate line or paragraph, but
    # its 5-grams repeat.
    text = "\n\n".join([passage, other, passage + " That is all for today."])
    verdict = gopher_repetition(text, REPETITION)
    assert not verdict.keep and verdict.rule == "duplicate_5gram_char_fraction"
    assert 0.25 < verdict.value < 0.4
    # The same text without the repeat passes.
    assert gopher_repetition("\n\n".join([passage, other]), REPETITION).keep


def test_empty_document_is_dropped_with_a_reason():
    assert gopher_repetition("", REPETITION).rule == "empty"
    assert gopher_quality("", QUALITY).rule == "word_count"
