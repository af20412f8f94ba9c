"""Which pairs a job computes from its burst's catalogue records, and how their outputs are named."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest

from coherence_assets.jobs.processes import SAR_COHERENCE_PARALLEL, SENTINEL1_SAR_COHERENCE
from embedded_openeo.pair_planning import (
    NO_PAIRS_MESSAGE,
    PairPlanningError,
    PlannedPair,
    catalogue_bounds,
    plan_job,
)
from embedded_openeo.processes import CoherenceComputation
from embedded_openeo.results import output_file_name


def _record(start: str, parent: str) -> dict[str, Any]:
    return {
        "ContentDate": {"Start": start},
        "ParentProductName": parent,
        "BurstId": 30343,
        "SwathIdentifier": "IW2",
        "AbsoluteBurstId": 1000 + int(start[8:10]),
    }


# 07-15 exists twice, from two parent products, milliseconds apart.
FAKE_RECORDS = [
    _record("2023-07-03T17:15:43.100000Z", "A"),
    _record("2023-07-15T17:15:43.100000Z", "B"),
    _record("2023-07-15T17:15:43.103000Z", "C"),
    _record("2023-07-27T17:15:43.100000Z", "D"),
]


class FakeArchive:
    """The catalogue records of one burst on fixed dates."""

    def records(
        self, burst_id: int, subswath: str, polarisation: str, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]:
        return [
            record
            for record in FAKE_RECORDS
            if subswath == record["SwathIdentifier"]
            and (start is None or start <= datetime.fromisoformat(record["ContentDate"]["Start"]))
            and (end is None or datetime.fromisoformat(record["ContentDate"]["Start"]) <= end)
        ]

    def bursts_intersecting(self, area: Any) -> list[tuple[int, str]]:
        return [(30343, "IW2")]


def plan_pairs(request: CoherenceComputation, archive: FakeArchive) -> list[PlannedPair]:
    return plan_job(request, archive, archive).pairs


def _request(**fields: Any) -> CoherenceComputation:
    defaults: dict[str, Any] = {
        "process_id": SENTINEL1_SAR_COHERENCE,
        "burst_id": 30343,
        "sub_swath": "IW2",
        "polarization": "VV",
        "coherence_window_rg": 21,
        "coherence_window_az": 5,
    }
    return CoherenceComputation(**(defaults | fields))


def test_pairing_keeps_duplicate_records_so_a_duplicated_date_yields_one_pair_per_record() -> None:
    request = _request(temporal_extent=("2023-07-01", "2023-07-27"), temporal_baseline=12)
    pairs = plan_pairs(request, FakeArchive())
    parents = [(pair.reference["ParentProductName"], pair.secondary["ParentProductName"]) for pair in pairs]
    assert parents == [("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]
    names = [output_file_name(request, pair) for pair in pairs]
    # Duplicates differ by milliseconds only, so both write the same file: one output per acquisition pair.
    assert len(set(names)) == 2
    assert names[0] == "S1_coh_2images_20230703T171543_20230715T171543.tif"


def test_the_extent_end_is_inclusive_and_no_pair_fails_with_the_cwl_message() -> None:
    inclusive = _request(temporal_extent=("2023-07-15", "2023-07-27"), temporal_baseline=12)
    assert len(plan_pairs(inclusive, FakeArchive())) == 2
    too_short = _request(temporal_extent=("2023-07-03", "2023-07-14"), temporal_baseline=12)
    with pytest.raises(PairPlanningError, match=NO_PAIRS_MESSAGE):
        plan_pairs(too_short, FakeArchive())


def test_explicit_pairs_take_the_first_record_of_each_date_and_name_outputs_by_reference_date() -> None:
    request = _request(
        process_id=SAR_COHERENCE_PARALLEL, insar_pairs=((date(2023, 7, 15), date(2023, 7, 27)),)
    )
    (pair,) = plan_pairs(request, FakeArchive())
    assert pair.reference["ParentProductName"] == "B"
    assert output_file_name(request, pair) == "openEO_2023-07-15Z.tif"
    missing = _request(
        process_id=SAR_COHERENCE_PARALLEL, insar_pairs=((date(2023, 7, 16), date(2023, 7, 28)),)
    )
    with pytest.raises(PairPlanningError, match="2023-07-16"):
        plan_pairs(missing, FakeArchive())


def test_the_openeo_date_naming_names_apex_outputs_by_reference_date_as_apexs_benchmark_stored_them() -> None:
    request = _request(temporal_extent=("2023-07-01", "2023-07-27"), temporal_baseline=12)
    first = plan_pairs(request, FakeArchive())[0]
    assert output_file_name(request, first, "openeo_date") == "openEO_2023-07-03Z.tif"
    assert output_file_name(request, first, "process").startswith("S1_coh_2images_20230703T")


def test_date_times_and_null_ends_are_asked_as_given_and_dates_cover_their_whole_day() -> None:
    assert catalogue_bounds(("2023-07-01", "2023-07-27")) == (
        datetime(2023, 7, 1, tzinfo=UTC),
        datetime(2023, 7, 27, 23, 59, 59, tzinfo=UTC),
    )
    assert catalogue_bounds(("2023-07-01T12:00:00Z", None)) == (datetime(2023, 7, 1, 12, tzinfo=UTC), None)
    assert catalogue_bounds(("2023-07-01 12:00:00+02:00", "2023-07-02t00:00:00z")) == (
        datetime(2023, 7, 1, 10, tzinfo=UTC),
        datetime(2023, 7, 2, tzinfo=UTC),
    )
    only_after_the_first = _request(temporal_extent=("2023-07-03T18:00:00Z", None), temporal_baseline=12)
    assert [
        pair.reference["ParentProductName"] for pair in plan_pairs(only_after_the_first, FakeArchive())
    ] == [
        "B",
        "C",
    ]


def test_an_end_at_midnight_without_pairs_gets_the_cwls_hint() -> None:
    midnight = _request(temporal_extent=("2023-07-03", "2023-07-15T00:00:00Z"), temporal_baseline=12)
    with pytest.raises(PairPlanningError, match="very beginning of that day"):
        plan_pairs(midnight, FakeArchive())


def test_a_baseline_no_acquisitions_are_apart_fails_naming_the_parameters() -> None:
    request = _request(temporal_extent=("2023-07-01", "2023-07-27"), temporal_baseline=7)
    with pytest.raises(
        PairPlanningError, match=f"{NO_PAIRS_MESSAGE} for the given parameters: .*'temporal_baseline': 7"
    ):
        plan_pairs(request, FakeArchive())


def test_without_burst_id_the_burst_is_found_by_area_and_a_null_sub_swath_by_the_first_record() -> None:
    request = _request(
        burst_id=None,
        sub_swath=None,
        spatial_extent=(10.5, 46.4, 10.6, 46.5),
        temporal_extent=("2023-07-01", "2023-07-27"),
        temporal_baseline=12,
    )
    plan = plan_job(request, FakeArchive(), FakeArchive())
    assert (plan.burst_id, plan.sub_swath, len(plan.pairs)) == (30343, "IW2", 4)
    with pytest.raises(PairPlanningError, match="spatial_extent or burst_id is required"):
        plan_job(dataclasses.replace(request, spatial_extent=None), FakeArchive(), FakeArchive())
