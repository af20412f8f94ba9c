"""Which burst and acquisition pairs a job computes, from the catalogue, as CDSE's CWL finds and pairs them.

The job's process graph is checked first (processes.py); the pairs found here are what the job runner
computes, one output each. The APEx process follows ``sar/get_bursts.py`` of cloudinsar/s1-workflows
(the ``get_insar_pairs`` step of ``sar_coherence_parallel_temporal_extent.cwl``):

- the catalogue is asked for the burst id, or for every burst intersecting ``spatial_extent`` (then the
  lowest burst id found is used), the polarisation, the sub-swath when given, and ``ContentDate/Start``
  from a date start's ``T00:00:00`` to a date end's ``T23:59:59`` (date-times as given, null open);
- records are sorted by ``AbsoluteBurstId``; a null ``sub_swath`` takes the first record's;
- every two records exactly ``temporal_baseline`` days apart form a pair, duplicates included;
- no pair fails the job with the CWL's ``Not enough bursts found to make pairs ...`` message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

import shapely

from coherence_assets.cdse_facts import IW_SUBSWATHS
from embedded_openeo.processes import CoherenceComputation, TemporalExtent

NO_PAIRS_MESSAGE = "Not enough bursts found to make pairs"
NO_BURST_MESSAGE = "spatial_extent or burst_id is required"


class PairPlanningError(RuntimeError):
    """The catalogue holds no acquisitions for the pairs a job asks for: the job ends in ``error``."""


class BurstArchive(Protocol):
    def records(
        self, burst_id: int, subswath: str, polarisation: str, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]: ...


class BurstLocator(Protocol):
    def bursts_intersecting(self, area: shapely.Geometry) -> list[tuple[int, str]]: ...


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


@dataclass(frozen=True)
class PlannedJob:
    """The burst a job resolved to and the pairs it computes there."""

    burst_id: int
    sub_swath: str
    pairs: list[PlannedPair]


def record_start(record: dict[str, Any]) -> datetime:
    """Acquisition start (``ContentDate/Start``) of a catalogue record, as an aware UTC datetime."""
    return _as_utc(datetime.fromisoformat(str(record["ContentDate"]["Start"]).replace("Z", "+00:00")))


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """``<first>T00:00:00`` to ``<last>T23:59:59`` in UTC, as the CWL asks the catalogue."""
    return (
        datetime.combine(first, time(0, 0, 0), tzinfo=UTC),
        datetime.combine(last, time(23, 59, 59), tzinfo=UTC),
    )


def catalogue_bounds(extent: TemporalExtent) -> tuple[datetime | None, datetime | None]:
    """The ``ContentDate/Start`` range the CWL asks for: a date start from ``T00:00:00``, a date end to
    ``T23:59:59``, a date-time as given, null open."""

    def bound(value: str | None, end_of_day: bool) -> datetime | None:
        if value is None:
            return None
        if len(value) == len("YYYY-MM-DD"):  # processes.py let through dates and RFC 3339 date-times only
            day = date.fromisoformat(value)
            return _day_bounds(day, day)[1 if end_of_day else 0]
        return _as_utc(datetime.fromisoformat(value.upper().replace("Z", "+00:00")))

    start, end = extent
    return bound(start, end_of_day=False), bound(end, end_of_day=True)


def plan_job(request: CoherenceComputation, archive: BurstArchive, locator: BurstLocator) -> PlannedJob:
    """The burst and pairs a job computes, from the catalogue records of its burst or area."""
    if request.insar_pairs is not None:
        assert request.burst_id is not None and request.sub_swath is not None
        pairs = [
            PlannedPair(
                _first_record_on(request, archive, reference), _first_record_on(request, archive, secondary)
            )
            for reference, secondary in request.insar_pairs
        ]
        return PlannedJob(request.burst_id, request.sub_swath, pairs)
    assert request.temporal_extent is not None and request.temporal_baseline is not None
    records = _records_of_request(request, archive, locator)
    burst_ids = {record["BurstId"] for record in records}
    if len(burst_ids) > 1:  # several bursts in the area: the CWL takes the lowest id
        records = [record for record in records if record["BurstId"] == min(burst_ids)]
    records.sort(key=lambda record: record["AbsoluteBurstId"])
    if not records:
        raise PairPlanningError(_no_pairs_message(request))
    sub_swath = request.sub_swath or records[0]["SwathIdentifier"]
    # The CWL pairs the records of every sub-swath but processes one; pairing that one alone gives
    # the same outputs without the triplicates.
    records = [record for record in records if record["SwathIdentifier"] == sub_swath]
    records.sort(key=record_start)
    baseline = timedelta(days=request.temporal_baseline)
    pairs = [
        PlannedPair(reference, secondary)
        for reference in records
        for secondary in records
        if record_start(secondary).date() - record_start(reference).date() == baseline
    ]
    if not pairs:
        raise PairPlanningError(_no_pairs_message(request))
    return PlannedJob(records[0]["BurstId"], sub_swath, pairs)


def _records_of_request(
    request: CoherenceComputation, archive: BurstArchive, locator: BurstLocator
) -> list[dict[str, Any]]:
    assert request.temporal_extent is not None
    start, end = catalogue_bounds(request.temporal_extent)
    subswaths = (request.sub_swath,) if request.sub_swath else IW_SUBSWATHS
    if request.burst_id is not None:
        bursts = [(request.burst_id, subswath) for subswath in subswaths]
    elif request.spatial_extent is not None:
        area = shapely.box(*request.spatial_extent)
        bursts = [(burst_id, sw) for burst_id, sw in locator.bursts_intersecting(area) if sw in subswaths]
    else:
        raise PairPlanningError(NO_BURST_MESSAGE)
    if request.burst_id is not None and request.spatial_extent is not None:
        area = shapely.box(*request.spatial_extent)
        inside = set(locator.bursts_intersecting(area))
        bursts = [burst for burst in bursts if burst in inside]
    return [
        record
        for burst_id, subswath in bursts
        for record in archive.records(burst_id, subswath, request.polarization, start, end)
    ]


def _no_pairs_message(request: CoherenceComputation) -> str:
    """The CWL's two wordings: one for an end at midnight (probably meant as the whole day), one otherwise."""
    assert request.temporal_extent is not None
    end = request.temporal_extent[1]
    if end is not None and "T00:00:00" in end:
        return (
            f"{NO_PAIRS_MESSAGE}. Is the end time intentionally put in the very beginning of that day? "
            f"End date: '{end}'"
        )
    return f"{NO_PAIRS_MESSAGE} for the given parameters: {request.given_parameters()}"


def _first_record_on(request: CoherenceComputation, archive: BurstArchive, day: date) -> dict[str, Any]:
    assert request.burst_id is not None and request.sub_swath is not None
    start, end = _day_bounds(day, day)
    records = archive.records(request.burst_id, request.sub_swath, request.polarization, start, end)
    if not records:
        raise PairPlanningError(
            f"{NO_PAIRS_MESSAGE}: no {request.polarization} acquisition of burst {request.burst_id} "
            f"{request.sub_swath} on {day}"
        )
    return records[0]
