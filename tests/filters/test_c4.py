from filters.c4 import C4Config, C4Rules
from samples import texts

RULES = C4Rules(C4Config())
PROSE = "\n".join(texts.ENGLISH["gardening"])


def test_lines_without_terminal_punctuation_or_too_short_are_removed():
    page = "\n".join(["Home | Shop | Contact", PROSE, "Read more", "Posted in Gardening"])
    verdict = RULES(page)
    assert verdict.keep
    assert verdict.text == PROSE


def test_policy_javascript_and_citation_lines():
    page = "\n".join(
        [
            PROSE,
            "This site uses cookies to give you a better experience.",
            "Please enable JavaScript in your browser to see this page.",
            "Tomatoes need a long warm season to ripen fully.[1]",
        ]
    )
    verdict = RULES(page)
    assert verdict.keep
    assert verdict.text == PROSE + "\nTomatoes need a long warm season to ripen fully."


def test_page_rules_drop_the_document():
    assert RULES(PROSE + "\n" + texts.LOREM_IPSUM).rule == "lorem_ipsum"
    assert RULES(PROSE + "\nSet x = {1, 2} in the formula below.").rule == "curly_bracket"
    verdict = RULES("One sentence only is here. And a second one.")
    assert (verdict.keep, verdict.rule, verdict.value, verdict.threshold) == (
        False,
        "sentences",
        2,
        5,
    )


def test_rules_can_be_switched_off():
    relaxed = C4Rules(C4Config(min_sentences=None, drop_curly_bracket=False))
    assert relaxed("A line with {braces} in it.").keep


def test_bad_words_list_drops_pages_on_whole_words_only():
    rules = C4Rules(C4Config(bad_words="list.txt"), bad_words=["grapefruit", "slug bait"])
    assert rules(PROSE + "\nWe spread slug bait around the lettuce beds.").rule == "bad_words"
    assert rules(PROSE + "\nGrapefruits are not on the list.").keep


def test_unchanged_page_carries_no_new_text():
    assert RULES(PROSE).text is None
