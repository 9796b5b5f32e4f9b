"""A griffe extension that reads kerasrnn's Keras-style docstrings.

kerasrnn writes docstrings as Keras does: `Args:`, `Call arguments:`,
`Returns:`, `Example:` followed by a blank line and unindented doctest lines,
`Reference:`. griffe's Google-style parser knows `Args` and `Returns`, but
would take `Call arguments` for an admonition of run-on text and the
unindented `>>>` lines for Markdown block quotes. Before parsing, this
extension rewrites the two headers into forms the parser knows, keeping
their titles:

- `Call arguments:` becomes `Other parameters: Call arguments:` (a list of
  names and descriptions, titled "Call arguments:");
- `Example:` (or `Examples:`) becomes `Examples: Example:`, its block
  indented under it, so that the doctest lines render as Python sessions;
- in `Args:`, an entry that names several arguments over more than one line
  (`activation, use_bias,` / `*_initializer, seed: As for ...`) is joined
  onto one line, the form the parser reads as one entry.

Only the docstring text that the documentation reads is changed; the code
is untouched. Loaded by mkdocstrings (`extensions:` in `mkdocs.yml`).
"""

import re

from griffe import Extension

_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_EXAMPLE = re.compile(r"^(Example|Examples):\s*$")


def join_argument_lists(lines):
    """Joins an `Args:` entry's names spread over several lines."""
    out, in_args, k = [], False, 0
    while k < len(lines):
        line = lines[k]
        if line.strip() and not line.startswith(" "):
            in_args = line.rstrip() == "Args:"
        item = in_args and line.startswith("    ") and not line.startswith("     ")
        while (
            item
            and ":" not in line
            and line.rstrip().endswith(",")
            and k + 1 < len(lines)
        ):
            k += 1
            line = f"{line.rstrip()} {lines[k].strip()}"
        out.append(line)
        k += 1
    return out


def rewrite(text):
    """The docstring `text` with its Keras-style headers made Google-style."""
    lines = join_argument_lists(text.splitlines())
    out, k = [], 0
    while k < len(lines):
        line = lines[k]
        if line.rstrip() == "Call arguments:":
            out.append("Other parameters: Call arguments:")
            k += 1
            continue
        match = _EXAMPLE.match(line)
        if not match:
            out.append(line)
            k += 1
            continue
        title = match.group(1)
        k += 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        block = []
        while k < len(lines) and not _SECTION.match(lines[k]):
            block.append(lines[k])
            k += 1
        while block and not block[-1].strip():
            block.pop()
        indented = all(not b.strip() or b.startswith(" ") for b in block)
        out.append(f"Examples: {title}:")
        out += [b if indented or not b.strip() else f"    {b}" for b in block]
        if k < len(lines):
            out.append("")
    return "\n".join(out)


class KerasStyleSections(Extension):
    """Rewrites `Call arguments:` and `Example:` headers before parsing."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
