"""What one sensor tick does with the backend's job listing, as a plain, testable decision.

The tick only decides; the Dagster sensor turns the decision into run requests, asset
observations and job starts. ``handled`` holds the jobs whose final state was already acted
on, so a tick after a restart repeats nothing (run keys guard the runs a second time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from coherence_assets.jobs.ledger import CANCELED, ERROR, FINISHED
from coherence_assets.jobs.ledger_index import TrackedJob


@dataclass
class TickCursor:
    """What the sensor remembers between ticks: jobs already acted on, and when it last started one."""

    handled: set[str] = field(default_factory=set)
    last_start_at: float | None = None

    def to_json(self) -> str:
        return json.dumps({"handled": sorted(self.handled), "last_start_at": self.last_start_at})

    @classmethod
    def from_json(cls, text: str | None) -> TickCursor:
        if not text:
            return cls()
        document = json.loads(text)
        return cls(set(document["handled"]), document.get("last_start_at"))


@dataclass
class TickPlan:
    finished: list[TrackedJob] = field(default_factory=list)
    to_resubmit: list[TrackedJob] = field(default_factory=list)
    given_up: list[TrackedJob] = field(default_factory=list)
    canceled: list[TrackedJob] = field(default_factory=list)
    to_start: list[str] = field(default_factory=list)
    unknown_to_backend: list[TrackedJob] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)


def plan_tick(
    tracked: list[TrackedJob], backend_jobs: dict[str, dict[str, Any]], handled: set[str], max_attempts: int
) -> TickPlan:
    """Sort the tracked jobs by what must happen to them now."""
    plan = TickPlan()
    for job in tracked:
        job_id = job.record.job_id
        if job_id not in backend_jobs:
            plan.unknown_to_backend.append(job)
            continue
        status = backend_jobs[job_id]["status"]
        plan.status_counts[status] = plan.status_counts.get(status, 0) + 1
        if status == "created":
            plan.to_start.append(job_id)
        if job_id in handled:
            continue
        if status == FINISHED:
            plan.finished.append(job)
        elif status == ERROR and not job.replaced:
            (plan.to_resubmit if job.record.attempt < max_attempts else plan.given_up).append(job)
        elif status == CANCELED:
            plan.canceled.append(job)
    return plan


def newly_handled(plan: TickPlan) -> set[str]:
    return {
        job.record.job_id
        for job in plan.finished + plan.to_resubmit + plan.given_up + plan.canceled
        if job.record.job_id is not None
    }
