"""The import graph as docs/architecture.md draws it: the stand-in stands alone beside the product.

The graph is grimp's (the engine of import-linter): it reads every import statement, those inside
functions too, so a lazy import cannot hide an arrow.
"""

from __future__ import annotations

import grimp
import pytest

FACTS = "coherence_assets.cdse_facts"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("coherence_assets", "embedded_openeo", cache_dir=None)


def imports_between(graph: grimp.ImportGraph, importers: set[str], imported: set[str]) -> list[str]:
    """``module:line imports module`` for every import from one set of modules into the other."""
    return [
        f"{importer}:{detail['line_number']} imports {target}"
        for importer in sorted(importers)
        for target in sorted(graph.find_modules_directly_imported_by(importer) & imported)
        for detail in graph.get_import_details(importer=importer, imported=target)
    ]


def modules_of(graph: grimp.ImportGraph, package: str) -> set[str]:
    return {module for module in graph.modules if module.split(".")[0] == package}


def test_the_stand_in_imports_nothing_of_the_product_but_the_cdse_facts(graph: grimp.ImportGraph) -> None:
    product = modules_of(graph, "coherence_assets") - {FACTS}
    assert not imports_between(graph, modules_of(graph, "embedded_openeo"), product)


def test_the_cdse_facts_import_nothing_of_the_product(graph: grimp.ImportGraph) -> None:
    assert graph.find_modules_directly_imported_by(FACTS) == set()
