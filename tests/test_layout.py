"""The package's shape: a core that knows no request, no import circles, small parts.

docs/how-it-works.md describes the layout these tests hold the code to.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lifespan_di"
CORE = "lifespan_di.core"
REQUEST_LAYER = (
    "lifespan_di.scope",
    "lifespan_di.providers",
    "lifespan_di.entry",
    "lifespan_di.view_resources",
)
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


# Cached: reachable() asks for each module once per start module, and re-parsing them
# all for each of the 50 start modules took 6-10 s under coverage.
@functools.cache
def imported_modules(name: str) -> frozenset[str]:
    """Every module of the package that ``name`` imports, wherever the import is.

    Imports under ``TYPE_CHECKING`` and inside functions count. ``from package import
    module`` counts as importing the module; importing a module does not count as
    importing its parent packages, whose ``__init__`` only re-exports.
    """
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(module for module in found if module in MODULES and module != name)


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for module in imported_modules(stack.pop()):
            if module not in seen:
                seen.add(module)
                stack.append(module)
    return seen


def core_modules() -> Iterator[str]:
    return (name for name in MODULES if name.startswith(CORE))


class TestImports:
    @pytest.mark.parametrize("name", list(core_modules()))
    def test_core_imports_no_request_machinery(self, name: str) -> None:
        """A core module reaches neither the request scope nor RequestResource, through any module of the package."""
        assert reachable(name).isdisjoint(REQUEST_LAYER)

    def test_core_loads_no_django_http(self) -> None:
        """Importing every core module, and what they import, loads neither django.http nor the request layer."""
        # The package's __init__ imports everything: stand in an empty package, so
        # that only what the core modules import themselves is loaded.
        script = (
            "import json, sys, types\n"
            f"package = types.ModuleType('lifespan_di')\n"
            f"package.__path__ = [{str(PACKAGE)!r}]\n"
            "sys.modules['lifespan_di'] = package\n"
            f"for name in {sorted(core_modules())!r}:\n"
            "    __import__(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )

        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        loaded = set(json.loads(result.stdout))

        assert "lifespan_di.core.lifespan" in loaded
        assert not {m for m in loaded if m.startswith("django.http")}
        assert loaded.isdisjoint(REQUEST_LAYER)

    def test_no_import_circles(self) -> None:
        """No module of the package imports, directly or not, a module that imports it back."""
        circles = sorted(name for name in MODULES if name in reachable(name))

        assert circles == []


class TestSizes:
    @pytest.mark.parametrize("name", list(MODULES))
    def test_module_size(self, name: str) -> None:
        """A module longer than 300 lines says why in its docstring."""
        source = MODULES[name].read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(source)) or ""

        lines = len(source.splitlines())

        assert lines <= MAX_MODULE_LINES or "Longer than" in docstring, lines

    @pytest.mark.parametrize("name", list(MODULES))
    def test_function_size(self, name: str) -> None:
        """No function or method is longer than 60 lines, docstring included."""
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))

        long = {
            node.name: node.end_lineno - node.lineno + 1
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno is not None
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        }

        assert long == {}
