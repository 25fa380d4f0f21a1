from dedup.exact import normalize_for_exact, text_hash


def test_layout_only_differences_hash_the_same():
    assert text_hash("Hello  World\n\nAgain") == text_hash("hello world again")
    assert text_hash("Hello World") != text_hash("Hello World!")
    assert normalize_for_exact(" A\tB \n") == "a b"


def test_keep_rule_is_deterministic_whatever_the_order():
    from dedup.cluster import keep_priority

    docs = [
        {"id": "s/2", "text": "abc", "source": "web"},
        {"id": "s/1", "text": "abc", "source": "web"},
        {"id": "s/0", "text": "ABC ", "source": "web"},
        {"id": "w/9", "text": "abc", "source": "wiki", "quality_score": 0.1},
    ]
    rules = ["source_priority", "quality_score", "length"]
    ranks = {"wiki": 0}
    for order in (docs, docs[::-1], docs[1:] + docs[:1]):
        ranked = sorted(order, key=lambda d: keep_priority(d, rules, ranks))
        # The priority source first, then the longest copy, then the smallest id.
        assert [d["id"] for d in ranked] == ["w/9", "s/0", "s/1", "s/2"]
