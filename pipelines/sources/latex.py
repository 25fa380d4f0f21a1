"""LaTeX cleaning as the LLaMA paper describes it for ArXiv: inline \\input/\\include, remove
comments, expand user-defined macros (\\newcommand, \\renewcommand, \\providecommand, \\def,
with arguments and an optional default), drop everything before the first section and the
bibliography."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

_COMMENT_RE = re.compile(r"(?<!\\)%.*$", re.MULTILINE)
_SECTION_RE = re.compile(r"\\(?:section|chapter)\*?\s*[\[{]")
_BIBLIOGRAPHY_RE = re.compile(
    r"\\begin\{thebibliography\}|\\bibliography(?:style)?\{|\\printbibliography|\\end\{document\}"
)
# The end of a paper's title block: \maketitle, or the abstract when it comes after it.
_TITLE_BLOCK_RE = re.compile(r"\\end\{abstract\}|\\maketitle")
_TITLE_RE = re.compile(r"\\title\s*(?:\[[^\]]*\])?\s*\{((?:[^{}]|\{[^{}]*\})*)\}", re.DOTALL)
_INPUT_RE = re.compile(r"\\(?:input|include)\s*\{([^{}]+)\}|\\input\s+([^\s{}\\]+)")
_NEWCOMMAND_RE = re.compile(r"\\(?:re)?newcommand\*?|\\providecommand\*?|\\def(?![a-zA-Z])")
_NAME_RE = re.compile(r"\\([a-zA-Z@]+|.)")

MAX_INPUT_DEPTH = 8  # \input nesting deeper than this is a loop
MAX_EXPANSION_PASSES = 10  # macros that use macros: expand until stable, within reason


@dataclass(frozen=True)
class Macro:
    name: str
    n_args: int
    default: str | None  # the optional first argument's default, if it has one
    body: str


def remove_comments(text: str) -> str:
    """Drop `%` comments (not `\\%`), keeping the line structure."""
    return _COMMENT_RE.sub("", text)


def inline_inputs(text: str, files: dict[str, str], current: str = "", depth: int = 0) -> str:
    """Replace \\input{x} and \\include{x} by the file's text (found among `files`)."""
    if depth > MAX_INPUT_DEPTH:
        return text
    base = posixpath.dirname(current)

    def replace(match: re.Match[str]) -> str:
        target = (match.group(1) or match.group(2) or "").strip()
        for candidate in (
            target,
            target + ".tex",
            posixpath.join(base, target),
            posixpath.join(base, target + ".tex"),
        ):
            candidate = posixpath.normpath(candidate)
            if candidate in files:
                included = remove_comments(files[candidate])
                return inline_inputs(included, files, candidate, depth + 1)
        return ""  # a missing file (a figure, a style) leaves nothing behind

    return _INPUT_RE.sub(replace, text)


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n":
        i += 1
    return i


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the {...} group at `start` (after spaces) and the index after it."""
    i = _skip_spaces(text, start)
    if i >= len(text) or text[i] != "{":
        return None
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2  # an escaped character, \{ and \} included
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    return None


def _bracketed(text: str, start: int) -> tuple[str, int] | None:
    i = _skip_spaces(text, start)
    if i >= len(text) or text[i] != "[":
        return None
    end = text.find("]", i)
    return (text[i + 1 : end], end + 1) if end != -1 else None


def parse_macros(text: str) -> tuple[dict[str, Macro], str]:
    """User macro definitions in `text`, and the text with the definitions removed."""
    macros: dict[str, Macro] = {}
    kept: list[str] = []
    position = 0
    for match in _NEWCOMMAND_RE.finditer(text):
        if match.start() < position:
            continue
        i = match.end()
        is_def = match.group(0) == "\\def"
        if is_def:
            name_match = _NAME_RE.match(text, i)
            if not name_match:
                continue
            name, i = name_match.group(1), name_match.end()
            params = re.match(r"(?:#\d)*", text[i:]).group(0)
            n_args, default, i = len(params) // 2, None, i + len(params)
        else:
            group = _braced(text, i)
            if group is not None:
                name, i = group[0].strip().lstrip("\\"), group[1]
            else:
                name_match = _NAME_RE.match(text, _skip_spaces(text, i))
                if not name_match:
                    continue
                name, i = name_match.group(1), name_match.end()
            n_args, default = 0, None
            count = _bracketed(text, i)
            if count is not None and count[0].strip().isdigit():
                n_args, i = int(count[0]), count[1]
                optional = _bracketed(text, i)
                if optional is not None:
                    default, i = optional
        body = _braced(text, i)
        if body is None or not re.fullmatch(r"[a-zA-Z@]+", name):
            continue
        macros[name] = Macro(name, n_args, default, body[0])
        kept.append(text[position : match.start()])
        position = body[1]
    kept.append(text[position:])
    return macros, "".join(kept)


def expand_macros(text: str, macros: dict[str, Macro]) -> str:
    """Replace every use of a user macro by its body with the arguments substituted."""
    if not macros:
        return text
    pattern = re.compile(
        r"\\(" + "|".join(sorted(map(re.escape, macros), key=len, reverse=True)) + r")(?![a-zA-Z@])"
    )
    for _ in range(MAX_EXPANSION_PASSES):
        out, position, changed = [], 0, False
        for match in pattern.finditer(text):
            if match.start() < position:
                continue
            macro = macros[match.group(1)]
            i, args = match.end(), []
            if macro.default is not None:
                optional = _bracketed(text, i)
                if optional is not None:
                    args.append(optional[0])
                    i = optional[1]
                else:
                    args.append(macro.default)
            complete = True
            while len(args) < macro.n_args:
                group = _braced(text, i)
                if group is None:
                    # An argument without braces is its next single token.
                    token = re.match(r"\s*(\\[a-zA-Z@]+|\S)", text[i:])
                    if token is None:
                        complete = False
                        break
                    args.append(token.group(1))
                    i += token.end()
                else:
                    args.append(group[0])
                    i = group[1]
            if not complete:
                continue
            body = macro.body
            for n, arg in enumerate(args, start=1):
                body = body.replace(f"#{n}", arg)
            out.append(text[position : match.start()])
            out.append(body)
            position, changed = i, True
        out.append(text[position:])
        text = "".join(out)
        if not changed:
            break
    return text


def find_main_file(files: dict[str, str]) -> str | None:
    """The file with \\documentclass and \\begin{document} (or just \\documentclass)."""
    candidates = [name for name, text in files.items() if "\\documentclass" in text]
    full = [name for name in candidates if "\\begin{document}" in files[name]]
    chosen = sorted(full or candidates, key=lambda n: (n.count("/"), -len(files[n]), n))
    return chosen[0] if chosen else None


def title_of(text: str) -> str | None:
    match = _TITLE_RE.search(text)
    return " ".join(match.group(1).split()) if match else None


def clean_paper(files: dict[str, str], main: str) -> tuple[str, str | None]:
    """(body, title) of a paper: inputs inlined, comments removed, macros expanded, from the
    first section up to the bibliography."""
    text = inline_inputs(remove_comments(files[main]), files, main)
    macros, text = parse_macros(text)
    title = title_of(text)
    if title:
        title = expand_macros(title, macros)
    text = expand_macros(text, macros)
    begin = text.find("\\begin{document}")
    body_start = begin + len("\\begin{document}") if begin != -1 else 0
    end = _BIBLIOGRAPHY_RE.search(text, body_start)
    body_end = end.start() if end else len(text)
    section = _SECTION_RE.search(text, body_start, body_end)
    if section and section.start() - body_start <= (body_end - body_start) / 2:
        start = section.start()
    else:
        # Letters without sections (or whose only section is a supplement) would lose their
        # whole body to the first-section rule: keep them from after the title block.
        middle = body_start + (body_end - body_start) // 2
        heads = [m.end() for m in _TITLE_BLOCK_RE.finditer(text, body_start, middle)]
        start = max(heads, default=body_start)
    text = text[start:body_end]
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip(), title
