"""The embedded archive looks like CDSE's: real timing, platforms, gaps, duplicates and fields."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pyproj import Geod
from shapely.geometry import shape

from coherence_assets.cdse_facts import is_ascending_burst, relative_orbit_of_burst_id
from coherence_assets.settings import packaged_demo_bursts_file
from embedded_openeo.acquisitions import AcquisitionArchive
from embedded_openeo.burst_registry import BurstRegistry

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CDSE_RECORD_FIELDS = {
    "@odata.mediaContentType",
    "Id",
    "Name",
    "ContentType",
    "S3Path",
    "ContentDate",
    "Footprint",
    "GeoFootprint",
    "ParentProductId",
    "ParentProductName",
    "ByteOffset",
    "BurstId",
    "AbsoluteBurstId",
    "AzimuthTime",
    "AzimuthAnxTime",
    "ParentProductType",
    "SwathIdentifier",
    "RelativeOrbitNumber",
    "OrbitDirection",
    "PlatformSerialIdentifier",
    "PolarisationChannels",
    "OperationalMode",
    "DatatakeID",
    "Lines",
    "LinesPerBurst",
    "SamplesPerBurst",
    "BeginningDateTime",
    "EndingDateTime",
}


@pytest.fixture(scope="module")
def registry() -> BurstRegistry:
    return BurstRegistry.from_file(Path(packaged_demo_bursts_file()))


@pytest.fixture(scope="module")
def archive(registry: BurstRegistry) -> AcquisitionArchive:
    return AcquisitionArchive(registry, now=NOW)


@pytest.fixture(scope="module")
def whole_archive_vv(archive: AcquisitionArchive) -> list[dict]:
    return archive.records(30343, "IW2", "VV", datetime(2014, 1, 1, tzinfo=UTC), NOW)


def start_of(record: dict) -> datetime:
    return datetime.fromisoformat(record["ContentDate"]["Start"])


def acquisition_days(records: list[dict], platform: str) -> list[date]:
    return sorted({start_of(r).date() for r in records if r["PlatformSerialIdentifier"] == platform})


def test_a_documented_cdse_record_is_reproduced_to_within_a_few_milliseconds(
    archive: AcquisitionArchive,
) -> None:
    # CDSE's documentation shows S1A burst 15805 IW1 VH at 2024-08-02T06:07:23.426535Z,
    # AbsoluteBurstId 118199091, from absolute orbit 55030.
    (record,) = archive.records(
        15805, "IW1", "VH", datetime(2024, 8, 2, tzinfo=UTC), datetime(2024, 8, 2, 23, 59, 59, tzinfo=UTC)
    )
    assert set(record) == CDSE_RECORD_FIELDS
    assert abs(start_of(record) - datetime(2024, 8, 2, 6, 7, 23, 426535, tzinfo=UTC)) < timedelta(
        milliseconds=50
    )
    assert abs(record["AbsoluteBurstId"] - 118199091) <= 1
    assert "_055030_" in record["ParentProductName"]
    assert record["ParentProductName"].startswith("S1A_IW_SLC__1SDV_20240802T06")
    assert record["ParentProductName"].endswith(".SAFE")
    assert (record["RelativeOrbitNumber"], record["OrbitDirection"]) == (8, "DESCENDING")
    assert record["Footprint"].startswith("geography'SRID=4326;POLYGON ((")
    assert record["ContentDate"]["Start"].endswith("Z")


def test_the_archive_is_the_same_on_every_call(registry: BurstRegistry, whole_archive_vv: list[dict]) -> None:
    again = AcquisitionArchive(registry, now=NOW).records(
        30343, "IW2", "VV", datetime(2014, 1, 1, tzinfo=UTC), NOW
    )
    assert again == whole_archive_vv


def test_records_are_sorted_by_start_within_the_requested_range(archive: AcquisitionArchive) -> None:
    start, end = datetime(2023, 7, 1, tzinfo=UTC), datetime(2023, 9, 30, 23, 59, 59, tzinfo=UTC)
    records = archive.records(30343, "IW2", "VV", start, end)
    starts = [start_of(r) for r in records]
    assert starts == sorted(starts)
    assert all(start <= moment <= end for moment in starts)
    assert 6 <= len(records) <= 10


def test_s1a_repeats_every_12_days_and_s1b_flies_6_days_later_until_2021_12_23(
    whole_archive_vv: list[dict],
) -> None:
    s1a, s1b = acquisition_days(whole_archive_vv, "A"), acquisition_days(whole_archive_vv, "B")
    assert s1a[0] >= date(2014, 10, 3)
    assert all((day - s1a[0]).days % 12 == 0 for day in s1a)
    assert date(2016, 9, 26) <= s1b[0] and s1b[-1] <= date(2021, 12, 23)
    assert all((day - s1a[0]).days % 12 == 6 for day in s1b)


def test_s1c_flies_in_the_slot_of_s1b_from_2025_05_21(whole_archive_vv: list[dict]) -> None:
    s1a, s1c = acquisition_days(whole_archive_vv, "A"), acquisition_days(whole_archive_vv, "C")
    assert s1c and s1c[0] >= date(2025, 5, 21) and s1c[0] - date(2025, 5, 21) <= timedelta(days=12)
    assert all((day - s1a[0]).days % 12 == 6 for day in s1c)
    between = [r for r in whole_archive_vv if date(2022, 1, 1) <= start_of(r).date() <= date(2025, 5, 20)]
    assert {r["PlatformSerialIdentifier"] for r in between} == {"A"}


def test_a_few_percent_of_acquisitions_are_missing(whole_archive_vv: list[dict]) -> None:
    s1a = acquisition_days(whole_archive_vv, "A")
    scheduled = (s1a[-1] - s1a[0]).days // 12 + 1
    missing_fraction = 1 - len(s1a) / scheduled
    assert 0.01 <= missing_fraction <= 0.08


def test_some_dates_have_two_records_from_overlapping_parent_products(whole_archive_vv: list[dict]) -> None:
    by_day: dict[date, list[dict]] = {}
    for record in whole_archive_vv:
        by_day.setdefault(start_of(record).date(), []).append(record)
    duplicated = [records for records in by_day.values() if len(records) > 1]
    assert 0.02 <= len(duplicated) / len(by_day) <= 0.2
    for first, second in duplicated:
        assert first["ParentProductName"] != second["ParentProductName"]
        assert first["Id"] != second["Id"]
        assert timedelta(0) < abs(start_of(first) - start_of(second)) < timedelta(milliseconds=10)


def test_each_acquisition_has_one_record_per_polarisation(archive: AcquisitionArchive) -> None:
    records = archive.search(30343, datetime(2023, 7, 1, tzinfo=UTC), datetime(2023, 7, 31, tzinfo=UTC))
    per_product = Counter((r["ParentProductName"], r["SwathIdentifier"]) for r in records)
    assert set(per_product.values()) == {2}
    assert {r["PolarisationChannels"] for r in records} == {"VV", "VH"}
    assert {r["SwathIdentifier"] for r in records} == {"IW1", "IW2", "IW3"}


def test_nothing_is_archived_after_now(archive: AcquisitionArchive) -> None:
    assert archive.records(30343, "IW2", "VV", NOW, NOW + timedelta(days=60)) == []


# 123944: a burst of no burst map, over land (the Antarctic coast); the open ocean has no IW bursts
@pytest.mark.parametrize("burst_id", [30343, 359507, 123944])
def test_a_burst_lies_only_on_the_relative_orbit_and_pass_its_id_implies(
    archive: AcquisitionArchive, burst_id: int
) -> None:
    records = archive.search(burst_id, datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 3, 1, tzinfo=UTC))
    assert {r["RelativeOrbitNumber"] for r in records} == {relative_orbit_of_burst_id(burst_id, "IW1")}
    expected_pass = "ASCENDING" if is_ascending_burst(burst_id, "IW1") else "DESCENDING"
    assert {r["OrbitDirection"] for r in records} == {expected_pass}


@pytest.mark.parametrize(
    ("burst_id", "subswath"), [(30343, "EW1"), (30343, "iw2"), (0, "IW2"), (10**7, "IW2")]
)
def test_bursts_outside_the_iw_burst_map_have_no_records(
    archive: AcquisitionArchive, burst_id: int, subswath: str
) -> None:
    assert archive.records(burst_id, subswath, "VV", datetime(2023, 1, 1, tzinfo=UTC), NOW) == []


def test_mapped_bursts_keep_their_polygon_and_others_get_a_20_by_80_km_footprint(
    archive: AcquisitionArchive, registry: BurstRegistry
) -> None:
    window = (datetime(2023, 7, 1, tzinfo=UTC), datetime(2023, 7, 20, tzinfo=UTC))
    mapped = archive.records(30343, "IW2", "VV", *window)[0]
    assert shape(mapped["GeoFootprint"]).equals(registry.footprint(30343, "IW2"))
    synthetic = shape(archive.records(123944, "IW1", "VV", *window)[0]["GeoFootprint"])
    area_km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(synthetic)[0]) / 1e6
    assert area_km2 == pytest.approx(20 * 80, rel=0.05)


def test_a_burst_over_the_open_ocean_has_no_records_as_iw_mode_does_not_image_it(
    archive: AcquisitionArchive,
) -> None:
    # 123456 lies in the Pacific, about 1,000 km south of Hawaii
    assert archive.search(123456, datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 3, 1, tzinfo=UTC)) == []
