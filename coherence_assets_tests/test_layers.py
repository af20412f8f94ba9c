"""The import graph as docs/architecture.md draws it: strict layers with no loop between packages, and
the stand-in standing alone beside the product.

The graph is grimp's (the engine of import-linter): it reads every import statement, those inside
functions too, so a lazy import cannot hide an arrow.
"""

from __future__ import annotations

import grimp
import pytest

FACTS = "coherence_assets.cdse_facts"

# Top to bottom: a module may import from its own package and from layers below it, never above.
# Siblings in one Layer may not import each other either, so no two packages form a loop.
# The steps follow the data: bursts -> catalogue -> pairs -> jobs -> rasters -> cube -> decay -> aoi/stac;
# raster_files (which pairs have a valid raster) sits below jobs, which asks it before paying for a pair.
LAYERS = (
    # apps
    "cli",
    grimp.Layer("demo", "backfill"),
    # the Dagster layer
    "definitions",
    "defs",
    # steps
    grimp.Layer("aoi", "stac", "preflight"),
    "decay",
    "cube",
    "rasters",
    "jobs",
    "raster_files",
    "pairs",
    "catalogue",
    "bursts",
    # base modules
    grimp.Layer("settings", "storage", "http_session", "partition_keys", "windows", "geofiles"),
    "asset_names",
    "cdse_facts",
)


def layer_names() -> list[str]:
    return [
        name
        for layer in LAYERS
        for name in (layer.module_tails if isinstance(layer, grimp.Layer) else [layer])
    ]


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


def test_every_module_of_the_product_has_its_layer(graph: grimp.ImportGraph) -> None:
    children = {
        module.removeprefix("coherence_assets.") for module in graph.find_children("coherence_assets")
    }
    assert sorted(children) == sorted(layer_names())


def test_no_module_imports_a_layer_above_its_own(graph: grimp.ImportGraph) -> None:
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS, containers={"coherence_assets"})
    arrows = [
        f"{dependency.importer} -> {dependency.imported}: "
        + " -> ".join((*route.heads, *route.middle, *route.tails))
        for dependency in sorted(illegal, key=lambda dependency: (dependency.importer, dependency.imported))
        for route in dependency.routes
    ]
    assert not arrows, "\n".join(arrows)


def test_the_stand_in_imports_nothing_of_the_product_but_the_cdse_facts(graph: grimp.ImportGraph) -> None:
    product = modules_of(graph, "coherence_assets") - {FACTS}
    assert not imports_between(graph, modules_of(graph, "embedded_openeo"), product)


def test_the_cdse_facts_import_nothing_of_the_product(graph: grimp.ImportGraph) -> None:
    assert graph.find_modules_directly_imported_by(FACTS) == set()
