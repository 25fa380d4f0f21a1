"""The C4 cleaning rules (Raffel et al. 2020, section 2.2, and the TFDS `c4_utils` reference).

Line rules remove lines (no terminal punctuation, fewer than 3 words, "javascript", cookie and
terms-of-use notices, over-long words); page rules drop the document ("lorem ipsum", a curly
bracket, fewer than 5 sentences left, a word from the optional bad-words list). A kept document
carries its cleaned text in the Verdict.
"""

from __future__ import annotations

import re
from typing import Literal

from filters.base import Filter, FilterConfig, LocalFile, Verdict, as_is, drop_if_below, register
from filters.text import count_sentences

_CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


@register
class C4Config(FilterConfig):
    """The C4 rules; each can be switched off."""

    name: Literal["c4"] = "c4"
    remove_citations: bool = True  # TFDS: Wikipedia-style [1], [edit], [citation needed]
    require_terminal_punctuation: bool = True  # C4: keep lines ending in . ? ! "
    min_words_per_line: int | None = 3  # C4: lines with at least 3 words
    min_sentences: int | None = 5  # C4: pages with at least 5 sentences
    max_word_length: int | None = 1000  # TFDS: lines with a longer word go
    drop_javascript_lines: bool = True  # C4: lines mentioning javascript
    drop_policy_lines: bool = True  # TFDS: cookie / terms-of-use notices
    drop_lorem_ipsum: bool = True  # C4: any "lorem ipsum" drops the page
    drop_curly_bracket: bool = True  # C4: any "{" drops the page (code)
    # C4: pages with a word of the "List of Dirty, Naughty, Obscene or Otherwise Bad Words".
    # None: off (the list is not shipped); a path or URI to a file of one word or phrase per line.
    bad_words: str | None = None
    files = ("bad_words",)

    def build(self, local_file: LocalFile = as_is) -> Filter:
        words = None
        if self.bad_words:
            with open(local_file(self.bad_words), "rb") as fh:
                lines = fh.read().decode("utf-8").splitlines()
            words = [w.strip() for w in lines if w.strip()]
        rules = C4Rules(self, words)
        return lambda doc: rules(doc["text"])


class C4Rules:
    """The C4 rules with their configuration; `bad_words` are the loaded words, if any."""

    def __init__(self, config: C4Config, bad_words: list[str] | None = None):
        self.config = config
        self.bad_words_re = None
        if bad_words:
            alternatives = "|".join(re.escape(w.lower()) for w in sorted(set(bad_words), key=len))
            self.bad_words_re = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")

    def __call__(self, text: str) -> Verdict:
        config = self.config
        kept: list[str] = []
        sentences = 0
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                continue
            words = line.split()
            if config.max_word_length is not None and any(
                len(w) > config.max_word_length for w in words
            ):
                continue
            if config.remove_citations:
                line = _CITATION_RE.sub("", line)
            if config.require_terminal_punctuation and (
                not line.endswith(TERMINAL_PUNCTUATION) or line.endswith("...")
            ):
                continue
            if config.min_words_per_line is not None and len(words) < config.min_words_per_line:
                continue
            lower = line.lower()
            if config.drop_lorem_ipsum and "lorem ipsum" in lower:
                return Verdict(False, "lorem_ipsum")
            if config.drop_javascript_lines and "javascript" in lower:
                continue
            if config.drop_curly_bracket and "{" in line:
                return Verdict(False, "curly_bracket")
            if config.drop_policy_lines and any(p in lower for p in POLICY_PHRASES):
                continue
            sentences += count_sentences(line)
            kept.append(line)
        verdict = drop_if_below("sentences", sentences, config.min_sentences)
        if verdict:
            return verdict
        cleaned = "\n".join(kept)
        if self.bad_words_re is not None:
            match = self.bad_words_re.search(cleaned.lower())
            if match:
                return Verdict(False, "bad_words")
        return Verdict(True, text=cleaned if cleaned != text else None)
