"""``deploy/helm/values.yaml``: valid for the Dagster Helm chart, the same instance as ``deploy/dagster.yaml``,
and the operators' table in ``docs/deployment.md`` names only keys the two files have.

The chart's ``values.schema.json`` is vendored (``dagster_chart/README.md`` says from where). Helm
validates the values after merging ours into the chart's defaults, which are not vendored: a map
we leave incomplete is completed by the defaults, so the check drops the schema's ``required``
lists, except in definitions whose values replace a default whole (the alternatives of an
``anyOf``, such as ``purgeAfterDays`` as a map, and list items, as Helm never merges lists).
Types, enums, unknown keys (``additionalProperties: false``) and the ``if``/``then`` rules stay.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "deploy" / "helm" / "values.yaml"
INSTANCE = REPO / "deploy" / "dagster.yaml"
DEPLOYMENT_DOC = REPO / "docs" / "deployment.md"
SCHEMA = Path(__file__).parent / "dagster_chart" / "values.schema.json"
KUBERNETES_DEFINITIONS = "https://kubernetesjsonschema.dev/"


def replaced_whole(schema: dict[str, Any]) -> set[str]:
    """Definitions reached as an ``anyOf`` alternative or as list items."""
    names: set[str] = set()

    def visit(node: Any, whole: bool) -> None:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if whole and reference.startswith("#/definitions/"):
                names.add(reference.removeprefix("#/definitions/"))
            for key, value in node.items():
                visit(value, key in ("anyOf", "items"))
        elif isinstance(node, list):
            for item in node:
                visit(item, whole)

    visit(schema, False)
    return names


def merge_tolerant(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as it applies to values that Helm merges into the chart's defaults."""
    relaxed = copy.deepcopy(schema)
    keep = replaced_whole(schema)
    relaxed.pop("required", None)
    for name, definition in relaxed["definitions"].items():
        if name not in keep:
            definition.pop("required", None)
    return relaxed


def without_kubernetes_references(node: Any) -> Any:
    """The schema without its references to Kubernetes' object definitions, which are not vendored
    (tests never fetch): there only the chart's own constraints beside each reference apply."""
    if isinstance(node, dict):
        return {
            key: without_kubernetes_references(value)
            for key, value in node.items()
            if not (key == "$ref" and str(value).startswith(KUBERNETES_DEFINITIONS))
        }
    if isinstance(node, list):
        return [without_kubernetes_references(item) for item in node]
    return node


def validator() -> jsonschema.Draft7Validator:
    schema = without_kubernetes_references(json.loads(SCHEMA.read_text()))
    return jsonschema.Draft7Validator(merge_tolerant(schema))


def errors(values: dict[str, Any]) -> list[str]:
    """Every violation, with the reasons each ``anyOf`` alternative failed."""
    return sorted(
        f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: "
        + "; ".join([error.message, *(reason.message for reason in error.context)])
        for error in validator().iter_errors(values)
    )


def helm_values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def test_the_helm_values_validate_against_the_charts_schema():
    assert errors(helm_values()) == []


@pytest.mark.parametrize(
    ("path", "value", "phrase"),
    [
        (["retention", "sensor", "purgeAfterDays"], {"skipped": 7, "failure": 30, "success": -1}, "started"),
        (["dagsterDaemon", "sensor"], {"useThreads": True}, "'sensor' was unexpected"),
        (["dagsterDaemon", "runCoordinator", "type"], "QueuedCoordinator", "QueuedCoordinator"),
        (["dagster-user-deployments", "deployments", 0, "port"], "3030", "3030"),
    ],
)
def test_the_check_catches_a_missing_tick_status_an_unknown_key_a_bad_enum_and_a_wrong_type(
    path: list, value: Any, phrase: str
):
    values = helm_values()
    target = values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    found = errors(values)

    assert any(phrase in line for line in found), found


def test_the_helm_values_say_what_the_instance_config_says():
    instance = yaml.safe_load(INSTANCE.read_text())
    values = helm_values()
    coordinator = instance["run_coordinator"]["config"]
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    retention = instance["retention"]

    assert values["dagsterDaemon"]["runCoordinator"]["type"] == instance["run_coordinator"]["class"]
    assert queued["maxConcurrentRuns"] == coordinator["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == coordinator["tag_concurrency_limits"]
    assert values["dagsterDaemon"]["sensors"] == {
        "useThreads": instance["sensors"]["use_threads"],
        "numWorkers": instance["sensors"]["num_workers"],
    }
    for kind in ("sensor", "schedule"):
        chart_days = values["retention"][kind]["purgeAfterDays"]
        instance_days = retention[kind]["purge_after_days"]
        if isinstance(instance_days, dict):
            assert {status: chart_days[status] for status in instance_days} == instance_days
        else:
            assert chart_days == instance_days
    assert (
        values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    )


def resolves(document: Any, dotted: str) -> bool:
    """Whether ``a.b.c`` names a key of the document (a list is looked into at each of its items)."""
    nodes = [document]
    for key in dotted.split("."):
        found = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if isinstance(item, dict) and key in item:
                    found.append(item[key])
        if not found:
            return False
        nodes = found
    return True


def test_the_operators_table_names_only_keys_of_the_two_files():
    """Each row: keys of deploy/dagster.yaml, then the Helm values' keys that render them."""
    table = [
        line for line in DEPLOYMENT_DOC.read_text().splitlines() if line.startswith("| `") and "|" in line[1:]
    ]
    instance, values = yaml.safe_load(INSTANCE.read_text()), helm_values()
    dotted = re.compile(r"`([A-Za-z_-]+(?:\.[A-Za-z_-]+)+)`")
    checked = 0
    for row in table:
        instance_cell, helm_cell = row.strip("|").split("|")[:2]
        for key in dotted.findall(instance_cell):
            assert resolves(instance, key), f"{key} is not in deploy/dagster.yaml: {row}"
            checked += 1
        for key in dotted.findall(helm_cell):
            assert resolves(values, key), f"{key} is not in deploy/helm/values.yaml: {row}"
            checked += 1
    assert checked >= 10, table
