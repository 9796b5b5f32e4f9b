"""The API reference's pages, made from the package itself.

One page per public package of `kerasrnn` (a folder whose path has no part
starting with `_`), mirroring the layout: the package's docstring, a table
of what its `__all__` re-exports, then every public module of the folder
with its public members. A module's public members are its `__all__`, or,
without one, the classes and functions it defines whose names do not start
with `_` (the project's rule: helpers that are not a promise carry a leading
underscore). An object is documented once, on the page of the module that
defines it; a name exported from a private module is documented where it
is exported. The package is read statically by griffe (nothing imported),
so a new module or sub-package gets its page without any edit here.
"""

import dataclasses

import griffe

PACKAGE = "kerasrnn"
TEACHING = "kerasrnn.teaching"
# Reading order of the library's sub-packages (the others follow by name).
LIBRARY_ORDER = (
    "cells",
    "layers",
    "fast",
    "callbacks",
    "inspection",
    "converters",
    "distribute",
    "export",
)


@dataclasses.dataclass
class Page:
    """One reference page: the package it documents and its Markdown."""

    package: str
    uri: str
    markdown: str

    @property
    def is_teaching(self):
        return self.package == TEACHING or self.package.startswith(TEACHING + ".")


def load(root):
    """The `kerasrnn` package as griffe reads it from the folder `root`."""
    return griffe.load(
        PACKAGE,
        search_paths=[root],
        allow_inspection=False,
        resolve_aliases=True,
        resolve_external=False,
    )


def is_folder(module):
    """Whether a module is a package (a folder with an `__init__.py`)."""
    return module.filepath is not None and module.filepath.name == "__init__.py"


def is_public_path(path):
    return not any(part.startswith("_") for part in path.split("."))


def public_modules(module):
    """`module` and every public module below it, parents first."""
    found = [module]
    for name, member in module.members.items():
        if member.is_alias or not member.is_module or name.startswith("_"):
            continue
        found += public_modules(member)
    return found


def public_names(module):
    """The names a module promises: `__all__`, or the public classes and
    functions it defines."""
    if module.exports is not None:
        return [str(name) for name in module.exports]
    return [
        name
        for name, member in module.members.items()
        if not name.startswith("_")
        and not member.is_alias
        and (member.is_class or member.is_function)
    ]


def _target(member):
    return member.final_target if member.is_alias else member


def documented_members(package):
    """`{module path: [member names]}`: where each public object is
    documented, in the order the modules list them."""
    homes = {}
    for module in public_modules(package):
        for name in public_names(module):
            if name not in module.members:
                raise ValueError(f"{module.path}.__all__ names {name!r}, not defined")
            target = _target(module.members[name])
            home = target.parent
            if home.path == module.path or is_public_path(home.path):
                key, member_name = home.path, target.name
            else:
                key, member_name = module.path, name
            names = homes.setdefault(key, [])
            if member_name not in names:
                names.append(member_name)
    return homes


def summary(obj):
    """The first sentence-paragraph of a docstring, on one line."""
    obj = _target(obj)
    if obj.docstring is None:
        return ""
    first = obj.docstring.value.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("|", "\\|")


def page_uri(package_path):
    return f"api/{package_path}.md"


def _module_block(path, members, heading_level, show_heading):
    lines = [f"::: {path}", "    options:"]
    lines.append(f"      heading_level: {heading_level}")
    lines.append(f"      show_root_heading: {str(show_heading).lower()}")
    if members:
        lines.append("      members:")
        lines += [f"        - {name}" for name in members]
    else:
        lines.append("      members: false")
    return "\n".join(lines)


def _exports_table(module, homes):
    rows = []
    for name in public_names(module):
        target = _target(module.members[name])
        if target.parent.path == module.path:
            continue
        home = target.parent.path
        identifier = (
            f"{home}.{target.name}" if home in homes else f"{module.path}.{name}"
        )
        rows.append(f"| [`{name}`][{identifier}] | {summary(target)} |")
    if not rows:
        return ""
    return "\n".join(["| name | what it is |", "| --- | --- |", *rows])


def _submodules(package):
    return [
        member
        for name, member in package.members.items()
        if not member.is_alias and member.is_module and not name.startswith("_")
    ]


def package_page(package, homes):
    """The Markdown of one package's page."""
    parts = [f"# `{package.path}`", ""]
    parts.append(
        _module_block(package.path, homes.get(package.path, []), 2, show_heading=False)
    )
    table = _exports_table(package, homes)
    if table:
        parts += ["", f"Importable from `{package.path}`:", "", table]
    subpackages = [m for m in _submodules(package) if is_folder(m)]
    if subpackages:
        parts += ["", "Sub-packages:", ""]
        parts += [
            f"- [`{m.path}`]({m.path}.md): {summary(m)}"
            for m in sorted(subpackages, key=lambda m: m.name)
        ]
    for module in sorted(_submodules(package), key=lambda m: m.name):
        if is_folder(module):
            continue
        parts += ["", _module_block(module.path, homes.get(module.path, []), 2, True)]
    return "\n".join(parts) + "\n"


def _order(package):
    parts = package.path.split(".")
    top = parts[1] if len(parts) > 1 else ""
    rank = LIBRARY_ORDER.index(top) if top in LIBRARY_ORDER else len(LIBRARY_ORDER)
    return (package.path.startswith(TEACHING), rank, package.path)


def pages(root):
    """Every reference page but the overview, in reading order."""
    package = load(root)
    homes = documented_members(package)
    packages = [m for m in public_modules(package) if is_folder(m) and m is not package]
    return (
        [
            Page(m.path, page_uri(m.path), package_page(m, homes))
            for m in sorted(packages, key=_order)
        ],
        package,
        homes,
    )


def overview(package, homes, reference_pages):
    """The reference's first page: the top-level names and the packages."""
    lines = ["# API reference", ""]
    lines += [
        "Every public class and function of kerasrnn, generated from the "
        "docstrings. The pages follow the package's folders: the library "
        "(what a model imports) first, then `kerasrnn.teaching`, the "
        "machinery behind the tutorials.",
        "",
        "## `import kerasrnn`",
        "",
        _exports_table(package, homes),
    ]
    for title, teaching in (("The library", False), ("The teaching package", True)):
        lines += ["", f"## {title}", "", "| package | what it holds |", "| --- | --- |"]
        for page in reference_pages:
            if page.is_teaching == teaching:
                module = package.get_member(page.package.split(".", 1)[1])
                lines.append(
                    f"| [`{page.package}`]({page.package}.md) | {summary(module)} |"
                )
    return "\n".join(lines) + "\n"
