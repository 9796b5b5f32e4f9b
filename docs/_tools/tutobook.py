"""Reads a tutorial script in the keras-io "tutobook" form.

A tutobook script is Python whose prose lives in top-level triple-quoted
strings: the first is a header (`Title:`, `Author:`, `Date created:`,
`Description:`, `Accelerator:`), every later one is Markdown that sits
between the code. `read_script` cuts a script into those pieces; the
notebook generator (`make_notebooks.py`) and the site's tutorial pages
(`mkdocs_hooks.py`) both build on it, so a script is the one source of its
notebook and of its web page.
"""

import ast
import dataclasses
import inspect
import re

HEADER_FIELDS = ("Title", "Author", "Date created", "Description", "Accelerator")
_FIELD = re.compile(r"^({}):\s*(.*)$".format("|".join(HEADER_FIELDS)))


@dataclasses.dataclass(frozen=True)
class Block:
    """One piece of a script: `kind` is `"markdown"` or `"code"`."""

    kind: str
    text: str


@dataclasses.dataclass(frozen=True)
class Script:
    """A parsed tutobook script: its header fields, its blocks in order, and
    the header docstring as written in the source (`docstring_source`)."""

    header: dict
    blocks: tuple
    docstring_source: str = ""

    @property
    def title(self):
        return self.header["Title"]


def parse_header(text):
    """The `Field: value` lines of a header docstring as a dict; a value goes
    on over the indented lines below it."""
    header, field = {}, None
    for line in inspect.cleandoc(text).splitlines():
        match = _FIELD.match(line)
        if match:
            field = match.group(1)
            header[field] = match.group(2).strip()
        elif field and line.strip():
            header[field] = f"{header[field]} {line.strip()}".strip()
        elif line.strip():
            raise ValueError(f"Unexpected line in a tutobook header: {line!r}")
    if "Title" not in header:
        raise ValueError("A tutobook header needs a 'Title:' line.")
    return header


def _prose_nodes(tree):
    return [
        node
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]


def _code_block(lines):
    text = "\n".join(lines).strip("\n")
    return [Block("code", text)] if text.strip() else []


def read_script(source):
    """Cuts a tutobook script's source into its header and blocks.

    Every top-level string statement after the header becomes a Markdown
    block (its text dedented); the source between two of them, without the
    blank lines around it, a code block.
    """
    tree = ast.parse(source)
    prose = _prose_nodes(tree)
    if not prose or prose[0] is not tree.body[0]:
        raise ValueError("A tutobook script starts with its header docstring.")
    lines = source.splitlines()
    header = parse_header(prose[0].value.value)
    blocks, position = [], prose[0].end_lineno
    for node in prose[1:]:
        blocks += _code_block(lines[position : node.lineno - 1])
        blocks.append(Block("markdown", inspect.cleandoc(node.value.value)))
        position = node.end_lineno
    blocks += _code_block(lines[position:])
    docstring = ast.get_source_segment(source, prose[0])
    return Script(header=header, blocks=tuple(blocks), docstring_source=docstring)


def header_markdown(script, heading="#"):
    """The title as a heading, then the other header fields, one per line."""
    lines = [f"{heading} {script.title}", ""]
    fields = [f for f in HEADER_FIELDS[1:] if script.header.get(f)]
    for k, field in enumerate(fields):
        end = "<br>" if k < len(fields) - 1 else ""
        lines.append(f"**{field}:** {script.header[field]}{end}")
    return "\n".join(lines)


def shift_headings(markdown, levels):
    """Moves every Markdown heading (outside code) `levels` levels down."""
    out, fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#{1,5} ", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)
