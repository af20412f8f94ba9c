"""Which pairs a job computes from its burst's catalogue records, and how their outputs are named."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from coherence_assets.jobs.processes import SAR_COHERENCE_PARALLEL, SENTINEL1_SAR_COHERENCE
from embedded_openeo.pair_planning import NO_PAIRS_MESSAGE, PairPlanningError, plan_pairs
from embedded_openeo.processes import CoherenceComputation
from embedded_openeo.results import output_file_name


def _record(start: str, parent: str) -> dict[str, Any]:
    return {"ContentDate": {"Start": start}, "ParentProductName": parent}


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
        self, burst_id: int, subswath: str, polarisation: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        return [
            record
            for record in FAKE_RECORDS
            if start <= datetime.fromisoformat(record["ContentDate"]["Start"]) <= end
        ]


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
    request = _request(temporal_extent=(date(2023, 7, 1), date(2023, 7, 27)), temporal_baseline=12)
    pairs = plan_pairs(request, FakeArchive())
    parents = [(pair.reference["ParentProductName"], pair.secondary["ParentProductName"]) for pair in pairs]
    assert parents == [("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]
    names = [output_file_name(request, pair) for pair in pairs]
    # Duplicates differ by milliseconds only, so both write the same file: one output per acquisition pair.
    assert len(set(names)) == 2
    assert names[0] == "S1_coh_2images_20230703T171543_20230715T171543.tif"


def test_the_extent_end_is_inclusive_and_no_pair_fails_with_the_cwl_message() -> None:
    inclusive = _request(temporal_extent=(date(2023, 7, 15), date(2023, 7, 27)), temporal_baseline=12)
    assert len(plan_pairs(inclusive, FakeArchive())) == 2
    too_short = _request(temporal_extent=(date(2023, 7, 3), date(2023, 7, 14)), temporal_baseline=12)
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
    request = _request(temporal_extent=(date(2023, 7, 1), date(2023, 7, 27)), temporal_baseline=12)
    first = plan_pairs(request, FakeArchive())[0]
    assert output_file_name(request, first, "openeo_date") == "openEO_2023-07-03Z.tif"
    assert output_file_name(request, first, "process").startswith("S1_coh_2images_20230703T")
