from dedup.exact import normalize_for_exact, split_duplicates, text_hash


def test_layout_only_differences_hash_the_same():
    assert text_hash("Hello  World\n\nAgain") == text_hash("hello world again")
    assert text_hash("Hello World") != text_hash("Hello World!")
    assert normalize_for_exact(" A\tB \n") == "a b"


def test_keep_rule_is_deterministic_whatever_the_order():
    docs = [
        {"id": "s/2", "text": "abc"},
        {"id": "s/1", "text": "abc"},
        {"id": "s/0", "text": "ABC "},
    ]
    for order in (docs, docs[::-1], docs[1:] + docs[:1]):
        kept, removed = split_duplicates(order)
        assert kept["id"] == "s/0"  # the longest copy, then the smallest id
        assert sorted(d["id"] for d in removed) == ["s/1", "s/2"]
