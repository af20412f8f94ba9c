"""The tree stays ``ruff`` clean and layered as the README says, checked with the test suite so CI enforces it."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ruff(*arguments: str) -> subprocess.CompletedProcess:
    executable = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if executable is None:
        pytest.fail("ruff is not installed: install the test extra (pip install -e '.[test]')")
    return subprocess.run([executable, *arguments], cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_check_is_clean():
    result = ruff("check", "coherence_assets", "embedded_openeo", "coherence_assets_tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = ruff(
        "format", "--check", "coherence_assets", "embedded_openeo", "coherence_assets_tests", "benchmarks"
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The product talks to the embedded backend over HTTP; only these start it, importing it when they do.
MAY_START_THE_EMBEDDED_BACKEND = {"coherence_assets/cli.py", "coherence_assets/defs/local_resources.py"}


def nodes_inside_functions(tree: ast.Module) -> set[int]:
    """Ids of the nodes that run only when a function is called, not when the module is imported
    (a function's body, not its decorators or default values)."""
    bodies = [
        statement
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for statement in function.body
    ] + [function.body for function in ast.walk(tree) if isinstance(function, ast.Lambda)]
    return {id(node) for body in bodies for node in ast.walk(body)}


def imported_module_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]


def imports_of(tree: ast.Module, package: str) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in a module that imports ``package`` or one of its modules."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(name == package or name.startswith(f"{package}.") for name in imported_module_names(node))
    ]


def embedded_backend_imports(tree: ast.Module) -> list[tuple[int, bool]]:
    """(line, at module level) of every import of ``embedded_openeo`` in a module."""
    inside_functions = nodes_inside_functions(tree)
    return [(node.lineno, id(node) not in inside_functions) for node in imports_of(tree, "embedded_openeo")]


def test_the_product_imports_the_embedded_backend_only_where_it_starts_it():
    misplaced = [
        f"{path.relative_to(REPO)}:{line}" + (" (module level)" if at_module_level else "")
        for path in sorted((REPO / "coherence_assets").rglob("*.py"))
        for line, at_module_level in embedded_backend_imports(ast.parse(path.read_text()))
        if at_module_level or path.relative_to(REPO).as_posix() not in MAY_START_THE_EMBEDDED_BACKEND
    ]
    assert not misplaced, (
        f"imports of embedded_openeo outside {sorted(MAY_START_THE_EMBEDDED_BACKEND)}: {misplaced}"
    )


# The environment is read once, when the definitions load; a module that read it on import (a run
# Config's default, say) would freeze whatever the environment held when something first imported it.
READS_THE_ENVIRONMENT_ON_IMPORT = {"coherence_assets/definitions.py"}


def environment_reads_on_import(tree: ast.Module) -> list[int]:
    """Lines outside any function (module level or class body) that call ``Settings.from_env`` or use ``os.environ``."""
    inside_functions = nodes_inside_functions(tree)
    return [
        node.lineno
        for node in ast.walk(tree)
        if id(node) not in inside_functions
        and isinstance(node, ast.Attribute)
        and (
            node.attr == "from_env"
            or (
                isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in {"environ", "getenv"}
            )
        )
    ]


def test_only_the_definitions_read_the_environment_when_imported():
    misplaced = [
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted((REPO / "coherence_assets").rglob("*.py"))
        if path.relative_to(REPO).as_posix() not in READS_THE_ENVIRONMENT_ON_IMPORT
        for line in environment_reads_on_import(ast.parse(path.read_text()))
    ]
    assert not misplaced, (
        f"environment read on import (take it from Settings or a resource instead): {misplaced}"
    )


# Dagster's internals change without notice; the two uses that have no public API (docs/architecture.md,
# "Choices worth knowing") stay in these modules, and the exact Dagster version is pinned for them.
MAY_IMPORT_DAGSTER_INTERNALS = {"coherence_assets/defs/ui_images.py", "coherence_assets/backfill.py"}


def test_only_the_two_documented_modules_import_dagster_internals():
    misplaced = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for folder in ("coherence_assets", "coherence_assets_tests", "benchmarks", "embedded_openeo")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.relative_to(REPO).as_posix() not in MAY_IMPORT_DAGSTER_INTERNALS
        for node in imports_of(ast.parse(path.read_text()), "dagster")
        if any(module.startswith("dagster._") for module in imported_module_names(node))
    ]
    assert not misplaced, (
        f"imports of dagster._ modules outside {sorted(MAY_IMPORT_DAGSTER_INTERNALS)}: {misplaced}"
    )
