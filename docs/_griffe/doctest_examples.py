"""Griffe extension for the docs build: shows the library's `Example:` blocks as code.

The library's docstrings follow Keras: `Example:` then `>>>` lines at the docstring's own
indentation. Google-style parsing wants the lines of a section indented under its title, and
calls the section `Examples:`; otherwise the `>>>` lines reach Markdown and become nested
quotes. This rewrites such blocks at build time only; the source files are not changed.
"""

from __future__ import annotations

import re

import griffe

_TITLE = re.compile(r"^(\s*)Examples?:\s*$")


def indent_examples(text: str) -> str:
    """`Example:` followed by unindented lines up to the next blank line -> an indented `Examples:` section."""
    lines = text.split("\n")
    result: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        match = _TITLE.match(line)
        following = lines[position + 1] if position + 1 < len(lines) else ""
        margin = match.group(1) if match else ""
        if match and following.startswith(margin + ">>>"):
            result.append(f"{margin}Examples:")
            position += 1
            while position < len(lines) and lines[position].strip():
                result.append("    " + lines[position])
                position += 1
            continue
        result.append(line)
        position += 1
    return "\n".join(result)


class DoctestExamples(griffe.Extension):
    """Rewrites unindented `Example:` blocks of every docstring into Google `Examples:` sections."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = indent_examples(obj.docstring.value)
