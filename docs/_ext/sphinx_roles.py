"""Griffe extension for the documentation site: dlnfusion's docstring conventions in Markdown.

dlnfusion's docstrings are prose with Sphinx cross-reference roles (``:func:`predict_times```,
``:class:`~dlnfusion.interventions.Deficit```, ...), which Markdown would print literally. Before
mkdocstrings renders a docstring, each role becomes inline code linked to the named object's
entry in the API reference; the name is resolved in the docstring's own scope, as Sphinx does.
The link is optional: a name the reference does not render (a building block one level down,
a private helper) stays plain code and raises no warning. The reStructuredText literal-block
marker (a paragraph ending in ``::`` before an indented block) loses its second colon; the
indented block is a code block in Markdown too.

Parameter lists follow numpydoc's layout, but most items read ``name : description`` (the
types are the signature's annotations) where numpydoc reads ``name : type``. An item whose text
after the colon is not a short type (a few words without sentence punctuation, e.g.
``(D, D) array``, ``sequence of str, optional``) gets that text moved to its description, so
the reference shows it as prose and not in the type column.

Asterisks are mathematics here (``W*_m``, ``w*``, ``M_*``, the batch shape ``(*batch, T)``)
more often than emphasis, and Markdown would pair them into italics: every asterisk is kept
literal except those of an emphasis (``*word*``, ``**phrase.**``) and of a bullet, outside
code spans and literal blocks.
"""
from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):`(~?)([^`<>]+)`")
_LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)
_ITEM_SECTIONS = {"parameters", "other parameters", "attributes"}
_ITEM = re.compile(r"^(\S[^:]*?)\s+:\s+(\S.*)$")
_CODE_SPAN = re.compile(r"(`+).+?\1|<code>.*?</code>|</?[A-Za-z][^<>]*>")
_EMPHASIS = re.compile(r"(?<![\w*\\(])(\*\*?)(?![\s*])(.+?)(?<![\s*\\])\1(?![\w*])")
_BULLET = re.compile(r"^(\s*)\* ")
_SENTENCE = re.compile(r"[.:;\"`]")


def _is_dash_line(line: str) -> bool:
    return bool(line.strip()) and not line.strip().strip("-")


def _is_type(text: str) -> bool:
    return len(text.split()) <= 4 and not _SENTENCE.search(text)


def _describe_items(text: str) -> str:
    """Move the prose of ``name : description`` items into their description (see above)."""
    lines, out, section = text.split("\n"), [], None
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and _is_dash_line(lines[i + 1]) and line.strip():
            section = line.strip().lower()
        elif section in _ITEM_SECTIONS and (match := _ITEM.match(line)) \
                and not _is_type(match[2]):
            out += [match[1], "    " + match[2]]
            continue
        out.append(line)
    return "\n".join(out)


def _escape_stars(text: str) -> str:
    """Escape the asterisks that are not emphasis, bullets or code (see the module docstring)."""
    out, literal_indent = [], None
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and (not line.strip() or indent > literal_indent):
            out.append(line)  # inside a literal block
            continue
        literal_indent = indent if line.rstrip().endswith("::") else None
        kept = []

        def keep(match: re.Match) -> str:
            kept.append(match[0])
            return f"\x00{len(kept) - 1}\x00"

        bullet = _BULLET.match(line)
        prefix = bullet[0] if bullet else ""
        line = _EMPHASIS.sub(keep, _CODE_SPAN.sub(keep, line[len(prefix):])).replace("*", "\\*")
        out.append(prefix + re.sub("\x00(\\d+)\x00", lambda m: kept[int(m[1])], line))
    return "\n".join(out)


def _target(obj: griffe.Object, name: str) -> str | None:
    head, _, rest = name.partition(".")
    root = obj.package.name
    if head == root:
        return name
    scope = obj if (obj.is_module or obj.is_class) else obj.parent
    try:
        base = scope.resolve(head)
    except (griffe.NameResolutionError, AttributeError):
        return None
    return f"{base}.{rest}" if rest else base


def _convert(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match) -> str:
        tilde, name = match[1], match[2].strip()
        shown = name.rsplit(".", 1)[-1] if tilde else name
        target = _target(obj, name)
        if target is None:
            return f"`{shown}`"
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

    text = _escape_stars(_ROLE.sub(link, _describe_items(text)))
    return _LITERAL_MARKER.sub(":", text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring in a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        stack, seen = [pkg], set()
        while stack:
            obj = stack.pop()
            if obj.is_alias or id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = _convert(obj, obj.docstring.value)
            stack.extend(obj.members.values())
