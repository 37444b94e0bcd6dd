"""Typed dependencies (issue 12): the composition root imports the components, never the other way round.

Every import counts here — at module level, inside a function, or for type checking only — since each is a
dependency a reader has to follow. `app.py` (the composition root) and `services.py` (the builders it calls
through `surfaces`) may import `server/` and `dispatch/`; nothing in `server/` or `dispatch/` imports them back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import codex_trio

PACKAGE = Path(codex_trio.__file__).resolve().parent
ROOTS = ("codex_trio.app", "codex_trio.services")
COMPONENTS = ("codex_trio.server", "codex_trio.dispatch")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_components_never_import_the_composition_root():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if not name.startswith(COMPONENTS):
            continue
        for imported in imported_modules(path):
            if imported in ROOTS:
                offenders.append(f"{name} imports {imported}")
    assert offenders == []


def test_the_rules_above_see_imports_of_every_kind():
    """The check would pass vacuously if it missed lazy or type-only imports: app.py imports server/ both ways."""
    assert "codex_trio.server.api" in imported_modules(PACKAGE / "app.py")
    assert "codex_trio.dispatch.dispatcher" in imported_modules(PACKAGE / "services.py")  # inside a function


def test_the_builders_never_import_the_gateway():
    """services.py builds components for the gateway and is typed against `server.host.GatewayHost`."""
    assert "codex_trio.app" not in imported_modules(PACKAGE / "services.py")


# Where the routes' typed dependencies are built from the components (`server.host.Components`): the builders and
# the app factory (its /health reads the store's state). Every other route module receives what it uses.
DEPENDENCY_BUILDERS = ("codex_trio.server.turns", "codex_trio.server.admin_deps", "codex_trio.server.api")
ROUTE_MODULES = ("codex_trio.server", "codex_trio.telemetry.routes")


def reaches_into_services(path: Path) -> list[int]:
    """The lines that read `<something>.services`: the whole bag of components, not a typed dependency."""
    return sorted({node.lineno for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Attribute) and node.attr == "services"})


def test_routes_receive_typed_dependencies_not_the_components():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name.startswith(ROUTE_MODULES) and name not in DEPENDENCY_BUILDERS:
            offenders += [f"{name}:{line} reads .services" for line in reaches_into_services(path)]
    assert offenders == []


def test_the_services_rule_sees_a_reach_through():
    assert reaches_into_services(PACKAGE / "server" / "admin_deps.py")  # the builder reads them, once per app
