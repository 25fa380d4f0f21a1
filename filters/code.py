"""Source-code filters for GitHub, as the LLaMA paper describes them: permissive licences only,
low-quality files dropped by line length and alphanumeric proportion, licence headers removed.

Thresholds are RedPajama's published GitHub filter values (the paper gives none).
"""

from __future__ import annotations

import re

from filters.base import KEEP, Verdict

MAX_LINE_LENGTH = 1000  # longest line: minified or generated files are longer
MAX_MEAN_LINE_LENGTH = 100  # mean line length
MIN_ALNUM_FRACTION = 0.25  # letters and digits among all characters

_LICENSE_TEXTS = (
    ("mit", re.compile(r"\bMIT License\b|Permission is hereby granted, free of charge", re.I)),
    ("apache", re.compile(r"Apache License", re.I)),
    ("bsd", re.compile(r"Redistribution and use in source and binary forms", re.I)),
)
# A leading comment block that speaks of copyright or licensing.
_HEADER_RE = re.compile(
    r"\A\s*(?:/\*.*?\*/|(?:(?://|#|--|;)[^\n]*\n)+|\"\"\".*?\"\"\"|<!--.*?-->)\s*", re.DOTALL
)
_HEADER_WORDS_RE = re.compile(
    r"copyright|licen[cs]e|SPDX-License-Identifier|all rights reserved", re.I
)


def license_family(name: str | None) -> str | None:
    """'MIT', 'apache-2.0', 'BSD-3-Clause'... -> 'mit', 'apache', 'bsd'; others as given."""
    if not name:
        return None
    lowered = name.strip().lower()
    for family in ("mit", "apache", "bsd"):
        if lowered.startswith(family):
            return family
    return lowered


def license_from_text(text: str) -> str | None:
    """The licence family a LICENSE/COPYING file's text states, if it is a known one."""
    for family, pattern in _LICENSE_TEXTS:
        if pattern.search(text[:5000]):
            return family
    return None


def strip_license_header(code: str) -> str:
    """The file without a leading comment block that is a copyright or licence notice."""
    match = _HEADER_RE.match(code)
    if match and _HEADER_WORDS_RE.search(match.group(0)):
        return code[match.end() :]
    return code


def check_code(code: str) -> Verdict:
    """Keep, or the rule a low-quality source file breaks: "code_line_length",
    "code_mean_line_length" or "code_alnum_fraction"."""
    lines = code.splitlines() or [""]
    longest = max(len(line) for line in lines)
    if longest > MAX_LINE_LENGTH:
        note = f"longest line {longest}"
        return Verdict(False, "code_line_length", longest, ">", MAX_LINE_LENGTH, note=note)
    mean = sum(len(line) for line in lines) / len(lines)
    if mean > MAX_MEAN_LINE_LENGTH:
        note = f"{mean:.0f}"
        return Verdict(False, "code_mean_line_length", mean, ">", MAX_MEAN_LINE_LENGTH, note=note)
    alnum = sum(c.isalnum() for c in code) / max(len(code), 1)
    if alnum < MIN_ALNUM_FRACTION:
        note = f"{alnum:.2f}"
        return Verdict(False, "code_alnum_fraction", alnum, "<", MIN_ALNUM_FRACTION, note=note)
    return KEEP
