"""The package layout DESIGN.md describes, checked on the source (imports parsed with ast, nothing imported):

* a protocol adapter never imports another adapter, and a shared protocol module imports no adapter — what two
  adapters need lives in a shared module of `protocols/`;
* every subcommand lives in `codex_trio/commands/`, and nothing imports `codex_trio.cli` (argument parsing only,
  so no import cycle runs through it);
* no empty packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "codex_trio"
PROTOCOLS = PACKAGE / "protocols"

# One module per client protocol (or endpoint family): parse_request / encoders / encode_error.
ADAPTERS = {"openai_chat", "responses", "anthropic", "gemini", "ollama", "images", "transcriptions"}
# What several adapters share; none of them may import an adapter.
SHARED = {"codex_request", "cors", "failures", "generated_images", "image_tool", "json_body", "meta",
          "multipart_form", "openai_envelope", "reasoning", "response_items", "schema", "stops", "token_count",
          "validators"}


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, absolute, wherever the import statement is (also inside functions);
    `from package import name` yields both `package` and `package.name` (name may be a module)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def protocol_imports(path: Path) -> set[str]:
    prefix = "codex_trio.protocols."
    return {name[len(prefix):].split(".")[0] for name in imported_modules(path) if name.startswith(prefix)}


def test_the_parser_sees_every_import_form() -> None:
    # the checks below are only as good as this: absolute (anthropic.py), relative (ollama.py), `from package
    # import module` and imports inside functions (surfaces.py)
    assert {"stops", "failures", "reasoning"} <= protocol_imports(PROTOCOLS / "anthropic.py")
    assert {"stops", "failures", "meta"} <= protocol_imports(PROTOCOLS / "ollama.py")
    assert {"codex_trio.commands.run", "codex_trio.server.openai_routes"} <= imported_modules(PACKAGE / "surfaces.py")


def test_every_protocol_module_is_classified() -> None:
    modules = {p.stem for p in PROTOCOLS.glob("*.py") if p.stem != "__init__"}
    assert modules == ADAPTERS | SHARED, "classify a new protocols/ module as an adapter or a shared module here"
    assert not ADAPTERS & SHARED


def test_no_adapter_imports_another_adapter() -> None:
    offences = {name: sorted(protocol_imports(PROTOCOLS / f"{name}.py") & (ADAPTERS - {name})) for name in ADAPTERS}
    assert {name: found for name, found in offences.items() if found} == {}


def test_shared_protocol_modules_import_no_adapter() -> None:
    offences = {name: sorted(protocol_imports(PROTOCOLS / f"{name}.py") & ADAPTERS) for name in SHARED}
    assert {name: found for name, found in offences.items() if found} == {}


def test_nothing_imports_the_cli_module() -> None:
    importers = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                       if path.name != "cli.py" or path.parent != PACKAGE
                       if "codex_trio.cli" in imported_modules(path))
    assert importers == []


def test_every_command_module_registers_itself() -> None:
    """Each module of commands/ (but the helpers) has a `register` that surfaces.add_commands calls."""
    helpers = {"__init__", "common", "gateway_client"}
    commands = {p.stem for p in (PACKAGE / "commands").glob("*.py")} - helpers
    surfaces = ast.parse((PACKAGE / "surfaces.py").read_text())
    add_commands = next(node for node in surfaces.body
                        if isinstance(node, ast.FunctionDef) and node.name == "add_commands")
    registered = {call.func.value.id for call in ast.walk(add_commands)
                  if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                  and call.func.attr == "register" and isinstance(call.func.value, ast.Name)}
    assert commands == registered
    for name in commands:
        tree = ast.parse((PACKAGE / "commands" / f"{name}.py").read_text())
        assert any(isinstance(node, ast.FunctionDef) and node.name == "register" for node in tree.body), name


def test_no_empty_packages() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        siblings = [p for p in init.parent.iterdir() if p != init and p.name != "__pycache__"]
        assert siblings, f"{init.parent.relative_to(PACKAGE)} is an empty package"
