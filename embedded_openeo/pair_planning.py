"""Which acquisition pairs a job computes, from the catalogue records of its burst, as CDSE's CWL pairs them.

The job's process graph is checked first (processes.py); the pairs found here are what the job runner
computes, one output each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from embedded_openeo.processes import CoherenceComputation

NO_PAIRS_MESSAGE = "Not enough bursts found to make pairs"


class PairPlanningError(RuntimeError):
    """The catalogue holds no acquisitions for the pairs a job asks for: the job ends in ``error``."""


class BurstArchive(Protocol):
    def records(
        self, burst_id: int, subswath: str, polarisation: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class PlannedPair:
    """Two catalogue records (CDSE ``Bursts`` entries) whose coherence one output holds."""

    reference: dict[str, Any]
    secondary: dict[str, Any]

    @property
    def reference_start(self) -> datetime:
        return record_start(self.reference)

    @property
    def secondary_start(self) -> datetime:
        return record_start(self.secondary)


def record_start(record: dict[str, Any]) -> datetime:
    """Acquisition start (``ContentDate/Start``) of a catalogue record, as an aware UTC datetime."""
    value = datetime.fromisoformat(str(record["ContentDate"]["Start"]).replace("Z", "+00:00"))
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """``<first>T00:00:00`` to ``<last>T23:59:59`` in UTC, as the CWL asks the catalogue."""
    return (
        datetime.combine(first, time(0, 0, 0), tzinfo=UTC),
        datetime.combine(last, time(23, 59, 59), tzinfo=UTC),
    )


def plan_pairs(request: CoherenceComputation, archive: BurstArchive) -> list[PlannedPair]:
    """The pairs a job computes, from the catalogue records of its burst.

    With a temporal extent, every two records exactly ``temporal_baseline`` days apart form a pair and
    duplicate records (one burst in two parent products) are kept, as the CWL keeps them, so a
    duplicated date yields one pair per record. With explicit pairs, each date takes its first record.
    """
    if request.insar_pairs is not None:
        return [
            PlannedPair(
                _first_record_on(request, archive, reference), _first_record_on(request, archive, secondary)
            )
            for reference, secondary in request.insar_pairs
        ]
    assert request.temporal_extent is not None and request.temporal_baseline is not None
    start, end = _day_bounds(*request.temporal_extent)
    records = archive.records(request.burst_id, request.sub_swath, request.polarization, start, end)
    baseline = timedelta(days=request.temporal_baseline)
    pairs = [
        PlannedPair(reference, secondary)
        for reference in records
        for secondary in records
        if record_start(secondary).date() - record_start(reference).date() == baseline
    ]
    if not pairs:
        raise PairPlanningError(NO_PAIRS_MESSAGE)
    return pairs


def _first_record_on(request: CoherenceComputation, archive: BurstArchive, day: date) -> dict[str, Any]:
    start, end = _day_bounds(day, day)
    records = archive.records(request.burst_id, request.sub_swath, request.polarization, start, end)
    if not records:
        raise PairPlanningError(
            f"{NO_PAIRS_MESSAGE}: no {request.polarization} acquisition of burst {request.burst_id} "
            f"{request.sub_swath} on {day}"
        )
    return records[0]
