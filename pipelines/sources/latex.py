"""LaTeX cleaning as the LLaMA paper describes it for ArXiv: inline \\input/\\include, remove
comments, expand user-defined macros (\\newcommand, \\renewcommand, \\providecommand, \\def,
with arguments and an optional default), drop everything before the first section and the
bibliography.

Expansion is bounded, since papers and package documentation are full of macros that were
never meant to be expanded by anything but TeX: macros that call themselves (directly or
through others) are left as written, since only TeX's conditionals could end them;
definitions shown inside verbatim text are not definitions; a file never includes itself;
and the text may grow to `max_chars` in all, after which the rest stays unexpanded."""

from __future__ import annotations

import bisect
import posixpath
import re
from dataclasses import dataclass

# A comment, or a \\verb span whose `%` is not one (group 1, kept).
_COMMENT_RE = re.compile(r"(\\verb\*?([^a-zA-Z\s*]).*?\2)|(?<!\\)%.*$", re.MULTILINE)
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
_CONTROL_WORD_RE = re.compile(r"\\([a-zA-Z@]+)")
_TOKEN_RE = re.compile(r"\s*(\\[a-zA-Z@]+|\S)")  # an argument without braces
_PARAMETERS_RE = re.compile(r"(?:#\d)*")
# Text shown as code, not run: definitions inside it define nothing.
_VERBATIM_RE = re.compile(
    r"\\begin\{(verbatim|Verbatim|BVerbatim|LVerbatim|lstlisting|minted|alltt|comment|"
    r"macrocode|filecontents|tcblisting|codeexample)(\*?)\}.*?\\end\{\1\2\}"
    r"|\\verb\*?([^a-zA-Z\s*])[^\n]*?\3",
    re.DOTALL,
)

MAX_INPUT_DEPTH = 8  # \input nesting deeper than this is a loop
MAX_EXPANSION_PASSES = 10  # macros that use macros: expand until stable, within reason
MAX_GROUP_CHARS = 100_000  # a {...} argument or body longer than this is unbalanced braces


@dataclass(frozen=True)
class Macro:
    name: str
    n_args: int
    default: str | None  # the optional first argument's default, if it has one
    body: str


def remove_comments(text: str) -> str:
    """Drop `%` comments (not `\\%`, not a `%` shown by \\verb), keeping the line structure."""
    return _COMMENT_RE.sub(lambda m: m.group(1) or "", text)


def inline_inputs(
    text: str,
    files: dict[str, str],
    current: str = "",
    depth: int = 0,
    max_chars: int | None = None,
    _chain: tuple[str, ...] = (),
) -> str:
    """Replace \\input{x} and \\include{x} by the file's text (found among `files`). A file
    that is already being included (it includes itself, directly or not) is left out, and
    nothing more is inlined once the text would pass `max_chars`."""
    if depth > MAX_INPUT_DEPTH:
        return text
    base = posixpath.dirname(current)
    chain = (*_chain, current)
    room = [max_chars - len(text) if max_chars is not None else None]

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
                if candidate in chain:
                    return ""  # a loop of inclusions
                included = remove_comments(files[candidate])
                limit = None if room[0] is None else room[0] + len(match.group(0))
                if limit is not None and len(included) > limit:
                    return ""  # over the size budget: the rest stays out
                included = inline_inputs(included, files, candidate, depth + 1, limit, chain)
                if room[0] is not None:
                    room[0] -= len(included) - len(match.group(0))
                return included
        return ""  # a missing file (a figure, a style) leaves nothing behind

    return _INPUT_RE.sub(replace, text)


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n":
        i += 1
    return i


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the {...} group at `start` (after spaces) and the index after it; None
    when there is none, or when it runs past MAX_GROUP_CHARS (unbalanced braces)."""
    i = _skip_spaces(text, start)
    if i >= len(text) or text[i] != "{":
        return None
    depth, j, end = 0, i, min(len(text), i + MAX_GROUP_CHARS)
    while j < end:
        c = text[j]
        if c == "\\":
            j += 2  # an escaped character, \\{ and \\} included
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


def _verbatim_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _VERBATIM_RE.finditer(text)]


def _inside(spans: list[tuple[int, int]], position: int) -> bool:
    index = bisect.bisect_right(spans, (position, float("inf"))) - 1
    return index >= 0 and spans[index][0] <= position < spans[index][1]


def parse_macros(text: str) -> tuple[dict[str, Macro], str]:
    """User macro definitions in `text`, and the text with the definitions removed.
    Definitions shown in verbatim text are left alone; \\providecommand does not replace a
    definition the text already made."""
    macros: dict[str, Macro] = {}
    kept: list[str] = []
    position = 0
    verbatim = _verbatim_spans(text)
    for match in _NEWCOMMAND_RE.finditer(text):
        if match.start() < position or _inside(verbatim, match.start()):
            continue
        i = match.end()
        is_def = match.group(0) == "\\def"
        if is_def:
            name_match = _NAME_RE.match(text, i)
            if not name_match:
                continue
            name, i = name_match.group(1), name_match.end()
            params = _PARAMETERS_RE.match(text, i).group(0)
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
        if not (match.group(0).startswith("\\providecommand") and name in macros):
            macros[name] = Macro(name, n_args, default, body[0])
        kept.append(text[position : match.start()])
        position = body[1]
    kept.append(text[position:])
    return macros, "".join(kept)


def recursive_macros(macros: dict[str, Macro]) -> set[str]:
    """The macros whose expansion reaches themselves again (directly or through others):
    only TeX's conditionals could end that recursion, so they are never expanded."""
    uses = {
        name: {m.group(1) for m in _CONTROL_WORD_RE.finditer(macro.body)} & macros.keys()
        for name, macro in macros.items()
    }
    recursive: set[str] = set()
    for name in macros:  # depth-first search from each macro for a way back to it
        seen, stack = set(), list(uses[name])
        while stack:
            other = stack.pop()
            if other == name:
                recursive.add(name)
                break
            if other not in seen:
                seen.add(other)
                stack.extend(uses[other])
    return recursive


def expand_macros(text: str, macros: dict[str, Macro], max_chars: int | None = None) -> str:
    """Replace every use of a user macro by its body with the arguments substituted, pass
    after pass while anything changes (at most MAX_EXPANSION_PASSES). Recursive macros and
    verbatim text are left as written; once the text would pass `max_chars`, the rest stays
    unexpanded."""
    expandable = {n: m for n, m in macros.items() if n not in recursive_macros(macros)}
    if not expandable:
        return text
    for _ in range(MAX_EXPANSION_PASSES):
        out, position, changed, size = [], 0, False, 0
        full = False
        verbatim = _verbatim_spans(text)  # code shown as written is not expanded
        for match in _CONTROL_WORD_RE.finditer(text):
            macro = expandable.get(match.group(1))
            if macro is None or match.start() < position or _inside(verbatim, match.start()):
                continue
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
                    token = _TOKEN_RE.match(text, i)
                    if token is None:
                        complete = False
                        break
                    args.append(token.group(1))
                    i = token.end()
                else:
                    args.append(group[0])
                    i = group[1]
            if not complete:
                continue
            body = macro.body
            for n, arg in enumerate(args, start=1):
                body = body.replace(f"#{n}", arg)
            before = text[position : match.start()]
            if max_chars is not None and size + len(before) + len(body) + len(text) - i > max_chars:
                full = True  # over the budget: this use and the rest stay as written
                break
            out.append(before)
            out.append(body)
            size += len(before) + len(body)
            position, changed = i, True
        out.append(text[position:])
        text = "".join(out)
        if not changed or full:
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


def clean_paper(
    files: dict[str, str], main: str, max_chars: int | None = None
) -> tuple[str, str | None]:
    """(body, title) of a paper: inputs inlined, comments removed, macros expanded, from the
    first section up to the bibliography. Inlining and expansion stop growing the text at
    `max_chars`."""
    text = inline_inputs(remove_comments(files[main]), files, main, max_chars=max_chars)
    macros, text = parse_macros(text)
    title = title_of(text)
    if title:
        title = expand_macros(title, macros, max_chars)
    text = expand_macros(text, macros, max_chars)
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
