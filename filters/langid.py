"""Language identification with fastText's lid.176 model (the .ftz by default, the full .bin
when configured), on text prepared as CCNet prepares it."""

from __future__ import annotations

from collections.abc import Sequence

from filters.base import KEEP, Verdict

# fastText's predictions come from the first few thousand characters anyway; long documents
# only cost time.
MAX_CHARS = 20_000


def normalize_for_langid(text: str) -> str:
    """CCNet's input to lid.176: the raw text on one line (CCNet drops the newlines; here they
    become spaces so words on either side stay apart). Case and accents are kept: lower-casing
    and stripping accents, as CCNet does before its language model, cost lid.176 accuracy
    (Czech and Portuguese lines turn into Slovak, Bosnian or Spanish)."""
    # fastText splits words on any whitespace itself; only a newline would end its input.
    return text[:MAX_CHARS].replace("\n", " ").strip()


class LanguageIdentifier:
    """Batch language prediction: `predict(texts)` -> [(language, score)]."""

    def __init__(self, model_path: str):
        import fasttext  # imported here: workers load it once in DoFn.setup

        self.model = fasttext.load_model(model_path)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        normalized = [normalize_for_langid(t or "") for t in texts]
        # Predict on a list: fastText's single-string path breaks under numpy 2.
        labels, scores = self.model.predict(normalized, k=1)
        return [
            (
                label[0].removeprefix("__label__") if len(label) else "unknown",
                float(score[0]) if len(score) else 0.0,
            )
            for label, score in zip(labels, scores, strict=True)
        ]


def language_decision(
    language: str, score: float, allowed: Sequence[str] | None, min_score: float
) -> Verdict:
    """The verdict on one prediction under a source's language policy: rule "language" or
    "low_score", the score as the value.

    `allowed` None records the language without filtering (ArXiv, StackExchange, GitHub).
    """
    if allowed is None:
        return KEEP
    if language not in allowed:
        note = f"{language} ({score:.2f}) not in {','.join(allowed)}"
        return Verdict(False, "language", score, note=note)
    if score < min_score:
        note = f"{language} {score:.3f} < {min_score}"
        return Verdict(False, "low_score", score, "<", min_score, note=note)
    return KEEP
