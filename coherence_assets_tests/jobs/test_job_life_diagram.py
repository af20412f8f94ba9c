"""The job life cycle that docs/architecture.md draws names the states and stuck kinds the code has."""

from __future__ import annotations

import re
from pathlib import Path

from coherence_assets.jobs.ledger import IN_FLIGHT, NOT_CREATED, RESOLVED, RESUBMITTING, TERMINAL
from coherence_assets.jobs.stuck import StuckKind

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"
# what the ledger's progress says of a job beyond its status: a download run awaited, a stuck reason,
# and a replacement that names it
DERIVED_STATES = {"downloading", "stuck", "replaced"}


def job_life_diagram() -> str:
    (diagram,) = re.findall(r"```mermaid\n(stateDiagram-v2\n.*?)```", ARCHITECTURE.read_text(), re.DOTALL)
    return diagram


def test_the_diagram_has_every_ledger_status_and_sensor_verdict_and_no_state_the_code_lacks():
    diagram = job_life_diagram()
    states = set(re.findall(r"^\s*(\w+) -->", diagram, re.MULTILINE)) | set(re.findall(r"--> (\w+)", diagram))

    assert states == IN_FLIGHT | TERMINAL | {NOT_CREATED, RESOLVED, RESUBMITTING} | DERIVED_STATES


def test_the_diagram_names_every_stuck_kind_the_sensor_decides():
    kinds = set(re.findall(r"\(([A-Z_]+)\)", job_life_diagram()))

    assert kinds == {kind.name for kind in StuckKind if kind != StuckKind.WORDED}
