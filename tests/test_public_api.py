"""kerasrnn's public API, written down and checked.

The rule:

- A module is public when no part of its dotted name starts with an
  underscore (`kerasrnn.inspection.gates`, not `kerasrnn._utils.validation`
  or `kerasrnn.callbacks._history`).
- Every public module lists its promise in `__all__`: in a module, exactly
  the names it defines without a leading underscore; in a package's
  `__init__`, names that exist, each a promise of the module it comes from
  (no private name re-exported).
- Every other top-level name carries a leading underscore. kerasrnn's own
  modules may use one another's underscored helpers; users, tutorials and
  the documentation do not.
- Every name that the README and docs/ import or name (`kerasrnn.x.y` in
  code blocks and inline code) resolves, and the tutorials import only
  public names, each of which resolves.

Private modules are imported only inside their parent package: the
import-linter contract "Private modules stay inside their package" checks
that (`lint-imports`).
"""

import ast
import glob
import importlib
import importlib.util
import os
import pkgutil
import re
import textwrap

import pytest

import kerasrnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def all_module_names():
    names = ["kerasrnn"]
    for info in pkgutil.walk_packages(kerasrnn.__path__, prefix="kerasrnn."):
        names.append(info.name)
    return sorted(names)


def is_public(name):
    return not any(part.startswith("_") for part in name.split("."))


PUBLIC_MODULES = [name for name in all_module_names() if is_public(name)]


def source_tree(module):
    with open(module.__file__, encoding="utf-8") as f:
        return ast.parse(f.read())


def defined_names(tree):
    """The names a module's top level defines (not imports)."""
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not (n.startswith("__") and n.endswith("__"))]


def resolves(module, name):
    """Whether `module.name` exists, as an attribute or a submodule."""
    if hasattr(module, name):
        return True
    try:
        importlib.import_module(f"{module.__name__}.{name}")
    except ModuleNotFoundError:
        return False
    return True


def test_the_walk_finds_the_packages():
    for name in (
        "kerasrnn.cells",
        "kerasrnn.layers",
        "kerasrnn.inspection.gates",
        "kerasrnn.teaching.text_classification.run",
    ):
        assert name in PUBLIC_MODULES
    assert "kerasrnn._utils.validation" not in PUBLIC_MODULES
    assert "kerasrnn.callbacks._history" not in PUBLIC_MODULES


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_lists_its_promise_in_all(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    promised = list(module.__all__)
    assert len(set(promised)) == len(promised), f"{name}.__all__ repeats a name"
    private = [n for n in promised if n.startswith("_")]
    assert not private, f"{name}.__all__ lists private names {private}"
    missing = [n for n in promised if not resolves(module, n)]
    assert not missing, f"{name}.__all__ lists names that do not exist: {missing}"
    defined = defined_names(source_tree(module))
    public = {n for n in defined if not n.startswith("_")}
    unlisted = sorted(public - set(promised))
    assert not unlisted, (
        f"{name} defines {unlisted} without a leading underscore but does not "
        "list them in __all__: promise them or rename them _private"
    )
    if not module.__file__.endswith("__init__.py"):
        imported = sorted(set(promised) - public)
        assert not imported, f"{name}.__all__ lists names it only imports: {imported}"


PUBLIC_PACKAGES = [
    n
    for n in PUBLIC_MODULES
    if importlib.util.find_spec(n).submodule_search_locations is not None
]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_a_package_re_exports_only_promises(name):
    """A name a package's `__all__` takes from one of its modules is in that
    module's `__all__`."""
    package = importlib.import_module(name)
    for exported in getattr(package, "__all__", []):
        value = getattr(package, exported, None)
        origin = getattr(value, "__module__", None)
        if origin is None or not origin.startswith("kerasrnn."):
            continue  # a submodule, a constant or a name defined here
        source = importlib.import_module(origin)
        if not is_public(origin):
            pytest.fail(f"{name} re-exports {exported} from private {origin}")
        assert exported in getattr(source, "__all__", [exported]), (
            f"{name} re-exports {exported}, which {origin}.__all__ does not promise"
        )


def test_the_package_root_exports_the_layers_and_cells():
    assert "LSTM" in kerasrnn.__all__ and "LSTMCell" in kerasrnn.__all__
    for name in kerasrnn.__all__:
        assert getattr(kerasrnn, name).__module__.startswith("kerasrnn.")
    assert kerasrnn.__version__ == "0.1.0"


# --- what the documentation and the tutorials import -----------------------

# A dotted reference: kerasrnn.x.y, not part of a longer word or path.
REFERENCE = re.compile(r"(?<![\w./-])kerasrnn(?:\.[A-Za-z_]\w*)+")
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def documents():
    paths = [os.path.join(ROOT, "README.md")]
    paths += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return [p for p in paths if os.path.exists(p)]


def imported_names(tree):
    """`(module, name)` for each kerasrnn import of a parsed block (name
    `None` for `import kerasrnn.x`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (a.name, None) for a in node.names if a.name.startswith("kerasrnn")
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "kerasrnn"
        ):
            found += [(node.module, a.name) for a in node.names]
    return found


def resolve_dotted(reference):
    """Imports the longest module prefix of `reference` and walks the rest
    as attributes; raises if any part does not exist."""
    parts = reference.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(reference)


def check_import(module, name):
    if name is None:
        importlib.import_module(module)
    elif name != "*":
        assert resolves(importlib.import_module(module), name), f"{module}.{name}"


@pytest.mark.parametrize("path", documents(), ids=os.path.basename)
def test_every_name_the_documentation_imports_or_names_resolves(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    imports, references = [], set(REFERENCE.findall(text))
    for language, block in FENCE.findall(text):
        if language in ("python", "py", "pycon"):
            # A block inside a list item is indented with the item.
            imports += imported_names(ast.parse(textwrap.dedent(block)))
    unresolved = []
    for module, name in imports:
        try:
            check_import(module, name)
        except (ImportError, AssertionError) as error:
            unresolved.append(f"from {module} import {name}: {error}")
    for reference in sorted(references):
        try:
            resolve_dotted(reference)
        except (ImportError, AttributeError) as error:
            unresolved.append(f"{reference}: {error!r}")
    assert not unresolved, f"{os.path.basename(path)}: " + "; ".join(unresolved)
    if path == os.path.join(ROOT, "README.md"):  # the check has something to check
        assert len(imports) >= 3 and len(references) >= 10


TUTORIALS = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.py")))


@pytest.mark.parametrize("path", TUTORIALS, ids=os.path.basename)
def test_a_tutorial_imports_only_public_names(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for module, name in imported_names(tree):
        named = module.split(".") + ([name] if name else [])
        assert not any(p.startswith("_") for p in named), (
            f"{os.path.basename(path)} imports private {module}.{name}"
        )
        check_import(module, name)


def test_the_checks_see_the_tutorials():
    assert len(TUTORIALS) >= 5
    assert any(os.path.basename(p) == "imdb_sentiment.py" for p in TUTORIALS)
