"""Word, line, paragraph and sentence splitting shared by the heuristic filters.

Words follow the usual web-filtering convention (spaCy's English tokenizer, as datatrove uses
it): punctuation marks are tokens of their own, numbers keep their separators, URLs,
abbreviations, contraction tails and an ellipsis are one token each. A single compiled regex
does it, which is what makes the filters fast.
"""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(
    r"(?:https?://|www\.)\S+"  # a URL is one token
    r"|(?:[^\W\d_]\.){2,}"  # so is an abbreviation like U.S.
    r"|\d+(?:[.,:]\d+)*"  # numbers keep their separators
    r"|['’]?\w+"  # words; a contraction's tail ('s, 're) is a word of its own
    r"|\.\.\."  # an ellipsis is one token
    r"|[^\w\s]"  # every other mark is a token
)
_LINES_RE = re.compile(r"\n+")
_PARAGRAPHS_RE = re.compile(r"\n{2,}")
# A sentence ends at . ! ? (or their run) followed by whitespace, a quote or the end of the line.
_SENTENCE_END_RE = re.compile(r"[.!?…]+(?=[\s\"'”’)\]]|$)")


class Tokens:
    """A text's tokens, split once and shared by every rule that reads them: the Gopher quality
    and repetition rules and the stored word count all see the same list."""

    __slots__ = ("text", "all", "_words")

    def __init__(self, text: str):
        self.text = text
        self.all: list[str] = _TOKEN_RE.findall(text)
        self._words: list[str] | None = None

    @property
    def words(self) -> list[str]:
        """The tokens that start with a letter, digit or underscore (not punctuation marks)."""
        if self._words is None:
            # `str.isalnum` or "_" on the first character is exactly what `\w` matches there.
            self._words = [t for t in self.all if t[0].isalnum() or t[0] == "_"]
        return self._words


# The last text split, per process: the rules of one document's chain run one after another on
# the same string object, so one entry is the whole cache. It holds a reference to the text, so
# an identity match can never be a different string.
_NOTHING = Tokens("")
_last = _NOTHING


def split(text: str) -> Tokens:
    """The text's Tokens, split once for consecutive calls on the same string."""
    global _last
    last = _last
    if last.text is text:
        return last
    # The previous text's tokens go first: two long documents' tokens are never held at once.
    last = _last = _NOTHING
    last = _last = Tokens(text)
    return last


def lines(text: str) -> list[str]:
    """Lines, runs of newlines counted as one break."""
    return _LINES_RE.split(text)


def paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines."""
    return _PARAGRAPHS_RE.split(text.strip())


def count_sentences(line: str) -> int:
    """Sentences in one line: terminal punctuation runs, and a trailing fragment counts too."""
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(line)]
    count = len(ends)
    if not ends or line[ends[-1] :].strip(" \t\"'”’)]"):
        count += 1 if line.strip() else 0
    return count
