"""The table of public entry points in docs/api.md, generated from the signatures.

``python tests/helpers/entry_points.py`` rewrites the "## Entry points" section of docs/api.md;
tests/test_vocabulary.py fails when the section and the signatures disagree.
"""
import inspect
import pathlib
import re

API = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api.md"
HEADING = "## Entry points"
INTRO = ("Every public function that runs or predicts dynamics, with its arguments in order "
         "(keyword-only ones after `*`; defaults in the sections below). Generated from the "
         "signatures by tests/helpers/entry_points.py; a test keeps it in step.")


def entry_points():
    """(qualified name, function) of every public runner and predictor."""
    import dlnfusion as dln
    mods = (("dln", dln), ("theory", dln.theory), ("reduced", dln.reduced),
            ("compare", dln.compare))
    out = []
    for label, mod in mods:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                out.append((f"{label}.{name}", obj))
    return out


def _arguments(fn) -> str:
    parts, star = [], False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if p.kind is p.VAR_POSITIONAL:
            parts.append("*" + p.name)
            star = True
        elif p.kind is p.VAR_KEYWORD:
            parts.append("**" + p.name)
        else:
            parts.append(p.name)
    return ", ".join(parts)


def _summary(fn) -> str:
    doc = inspect.getdoc(fn) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").replace("|", "\\|").strip()
    # docstrings mark code RST-style (``x``, :func:`x`): keep the words, drop the marks, so that
    # the Markdown table's code spans stay balanced
    first = re.sub(r":\w+:`~?([^`]*)`", r"\1", first).replace("`", "")
    return first


def section() -> str:
    rows = [f"| `{q}` | {'`' + _arguments(f) + '`' if _arguments(f) else '(none)'} | "
            f"{_summary(f)} |" for q, f in entry_points()]
    return "\n".join([HEADING, INTRO, "", "| entry point | arguments | what it does |",
                      "| --- | --- | --- |", *rows, ""]) + "\n"


def current() -> str:
    text = API.read_text()
    start = text.index(HEADING)
    end = text.index("\n## ", start + 1) + 1
    return text[start:end]


def write() -> None:
    text = API.read_text()
    if HEADING in text:
        text = text.replace(current(), section())
    else:
        at = text.index("## Data: `dln.Stats`")
        text = text[:at] + section() + "\n" + text[at:]
    API.write_text(text)


if __name__ == "__main__":
    write()
