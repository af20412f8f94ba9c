"""Validating STAC documents against the vendored JSON schemas (see schemas/README.md), offline.

The registry holds only the files under ``schemas/``, keyed by the URL they are published at
(``schemas/<host>/<path>``), and has no retriever: a reference to anything else fails instead of
reaching the internet.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema_specifications import REGISTRY as METASCHEMAS
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SCHEMAS = Path(__file__).parent / "schemas"
CORE_SCHEMAS = {
    "Feature": "item-spec/json-schema/item.json",
    "Collection": "collection-spec/json-schema/collection.json",
    "Catalog": "catalog-spec/json-schema/catalog.json",
}


@cache
def schema_registry() -> Registry:
    resources = [
        (
            f"https://{path.relative_to(SCHEMAS).as_posix()}",
            Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT7),
        )
        for path in sorted(SCHEMAS.rglob("*.json"))
    ]
    # draft-07's own metaschema, which collection.json references for its summaries
    return METASCHEMAS.combine(Registry().with_resources(resources))


def schema_uris(document: dict[str, Any]) -> list[str]:
    """The core schema of the document's type and version, then those of its extensions."""
    core = f"https://schemas.stacspec.org/v{document['stac_version']}/{CORE_SCHEMAS[document['type']]}"
    return [core, *document.get("stac_extensions", [])]


def validate_stac(document: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` is valid against every schema it names."""
    registry = schema_registry()
    for uri in schema_uris(document):
        Draft7Validator(registry.contents(uri), registry=registry).validate(document)
