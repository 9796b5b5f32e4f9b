"""Imports the documentation tooling of `docs/_tools/` for the tests."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "docs", "_tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

import api_reference  # noqa: E402
import check_site  # noqa: E402
import griffe_docstrings  # noqa: E402
import make_notebooks  # noqa: E402
import mkdocs_hooks  # noqa: E402
import tutobook  # noqa: E402

__all__ = [
    "ROOT",
    "api_reference",
    "check_site",
    "griffe_docstrings",
    "make_notebooks",
    "mkdocs_hooks",
    "tutobook",
]
