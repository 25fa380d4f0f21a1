import pytest

from filters.quality_classifier import (
    NEGATIVE,
    POSITIVE,
    ClassifierTrainingConfig,
    ReferenceClassifier,
    classifier_text,
    evaluate,
    roc_auc,
    train_fasttext,
)


def test_roc_auc_known_values():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    # One positive below one negative out of 2 x 2 pairs.
    assert roc_auc([1, 1, 0, 0], [0.9, 0.3, 0.4, 0.1]) == 0.75


def test_evaluate_counts_at_the_threshold():
    m = evaluate([1, 1, 0, 0], [0.9, 0.3, 0.6, 0.1], 0.5)
    assert (m["precision"], m["recall"], m["accuracy"]) == (0.5, 0.5, 0.5)
    assert (m["positives"], m["negatives"]) == (2, 2)


def test_classifier_text_is_one_lowercase_line_with_punctuation_apart():
    assert classifier_text("Hello, World!\nNew line.") == "hello , world ! new line ."


CONFIG = ClassifierTrainingConfig(positives=["a"], negatives=["b"], epoch=30, lr=0.5, bucket=1000)


def _train(tmp_path, name, positive_word, negative_word):
    data = tmp_path / f"{name}.txt"
    lines = []
    for i in range(40):
        lines.append(f"{POSITIVE} the {positive_word} number {i} is here")
        lines.append(f"{NEGATIVE} the {negative_word} number {i} is here")
    data.write_text("\n".join(lines) + "\n")
    model = tmp_path / f"{name}.bin"
    train_fasttext(str(data), CONFIG, str(model))
    return str(model)


def test_training_is_deterministic(tmp_path):
    a = _train(tmp_path, "a", "encyclopedia", "discount")
    b = _train(tmp_path, "b", "encyclopedia", "discount")
    assert open(a, "rb").read() == open(b, "rb").read()


def test_cross_fitted_pair_scores_training_documents_with_the_other_model(tmp_path):
    # Two models that disagree completely: which one scored a document shows in its score.
    likes = _train(tmp_path, "likes", "encyclopedia", "discount")
    hates = _train(tmp_path, "hates", "discount", "encyclopedia")
    classifier = ReferenceClassifier([likes, hates], [{"doc-a"}, {"doc-b"}])
    text = "the encyclopedia number 7 is here"
    unseen, in_first, in_second = classifier.score_batch([text] * 3, ["new", "doc-a", "doc-b"])
    assert in_first < 0.1  # trained into `likes`: scored by `hates` only
    assert in_second > 0.9  # trained into `hates`: scored by `likes` only
    assert unseen == pytest.approx((in_first + in_second) / 2, abs=1e-6)
