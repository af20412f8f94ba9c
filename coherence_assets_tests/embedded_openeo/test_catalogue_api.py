"""The embedded ``/odata/v1/Bursts`` answers over HTTP like CDSE's catalogue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import shapely
import shapely.geometry

from embedded_openeo.config import BackendConfig
from embedded_openeo.server import running_backend

BURST_FILTER = "BurstId eq 30343 and SwathIdentifier eq 'IW2' and PolarisationChannels eq 'VV'"
SUMMER_2023 = (
    "ContentDate/Start ge 2023-07-01T00:00:00.000Z and ContentDate/Start le 2023-10-12T23:59:59.000Z"
)


@pytest.fixture(scope="module")
def bursts_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = BackendConfig(
        data_dir=tmp_path_factory.mktemp("backend"), port=0, catalogue_now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    with running_backend(config) as url:
        yield f"{url}/odata/v1/Bursts"


def query(url: str, **options: str) -> requests.Response:
    return requests.get(url, params={f"${name}": value for name, value in options.items()}, timeout=10)


def all_pages(url: str, **options: str) -> tuple[list[dict], int]:
    """Every record of a query, following ``@odata.nextLink``; also the number of pages."""
    response = query(url, **options)
    records, pages = [], 0
    while True:
        response.raise_for_status()
        body = response.json()
        records += body["value"]
        pages += 1
        if "@odata.nextLink" not in body:
            return records, pages
        response = requests.get(body["@odata.nextLink"], timeout=10)


def starts(records: list[dict]) -> list[str]:
    return [r["ContentDate"]["Start"] for r in records]


def test_an_answer_has_cdse_shape_and_a_default_page_of_20(bursts_url: str) -> None:
    body = query(bursts_url, filter=BURST_FILTER).json()
    assert body["@odata.context"] == "$metadata#Bursts"
    assert len(body["value"]) == 20
    assert body["@odata.nextLink"].startswith(bursts_url + "?")
    assert "@odata.count" not in body


def test_paging_through_next_links_returns_every_record_once(bursts_url: str) -> None:
    filter_ = f"{BURST_FILTER} and ContentDate/Start ge 2021-01-01T00:00:00.000Z and ContentDate/Start lt 2023-01-01"
    paged, pages = all_pages(bursts_url, filter=filter_, top="25")
    single = query(bursts_url, filter=filter_, top="1000", count="true").json()
    assert pages >= 3
    assert [r["Id"] for r in paged] == [r["Id"] for r in single["value"]]
    assert len({r["Id"] for r in paged}) == len(paged) == single["@odata.count"]
    assert "@odata.nextLink" not in single


def test_filters_select_by_time_subswath_polarisation_and_orbit(bursts_url: str) -> None:
    records = query(bursts_url, filter=f"{BURST_FILTER} and {SUMMER_2023}", top="1000").json()["value"]
    assert records
    assert all("2023-07-01" <= start[:10] <= "2023-10-12" for start in starts(records))
    assert {(r["BurstId"], r["SwathIdentifier"], r["PolarisationChannels"]) for r in records} == {
        (30343, "IW2", "VV")
    }
    assert {(r["RelativeOrbitNumber"], r["OrbitDirection"]) for r in records} == {(15, "ASCENDING")}
    on_other_orbit = query(bursts_url, filter=f"{BURST_FILTER} and RelativeOrbitNumber eq 16").json()
    assert on_other_orbit["value"] == []


def test_a_parenthesised_filter_on_a_parent_product_finds_its_records(bursts_url: str) -> None:
    product = query(bursts_url, filter=f"{BURST_FILTER} and {SUMMER_2023}").json()["value"][0][
        "ParentProductName"
    ]
    filter_ = f"(BurstId eq 30343) and (ParentProductName eq '{product}' and OrbitDirection eq 'ASCENDING')"
    records = query(bursts_url, filter=filter_).json()["value"]
    assert {r["ParentProductName"] for r in records} == {product}
    assert Counter((r["SwathIdentifier"], r["PolarisationChannels"]) for r in records)[("IW2", "VV")] == 1


def test_orderby_descending_reverses_the_default_ascending_order(bursts_url: str) -> None:
    filter_ = f"{BURST_FILTER} and {SUMMER_2023}"
    ascending = starts(query(bursts_url, filter=filter_).json()["value"])
    descending = starts(query(bursts_url, filter=filter_, orderby="ContentDate/Start desc").json()["value"])
    assert ascending == sorted(ascending)
    assert descending == sorted(ascending, reverse=True)


def test_duplicate_records_of_one_date_are_served(bursts_url: str) -> None:
    filter_ = f"{BURST_FILTER} and ContentDate/Start ge 2018-01-01 and ContentDate/Start lt 2021-01-01"
    records = query(bursts_url, filter=filter_, top="1000").json()["value"]
    per_day = Counter(start[:10] for start in starts(records))
    duplicated_day = next(day for day, count in per_day.items() if count == 2)
    products = {
        r["ParentProductName"] for r in records if r["ContentDate"]["Start"].startswith(duplicated_day)
    }
    assert len(products) == 2


def test_s1b_is_absent_after_2021_12_23_and_s1c_present_after_2025_05_21(bursts_url: str) -> None:
    def platforms(since: str, until: str) -> set[str]:
        filter_ = f"{BURST_FILTER} and ContentDate/Start ge {since} and ContentDate/Start lt {until}"
        return {
            r["PlatformSerialIdentifier"]
            for r in query(bursts_url, filter=filter_, top="1000").json()["value"]
        }

    assert platforms("2021-06-01", "2021-12-23") == {"A", "B"}
    assert platforms("2021-12-24", "2025-05-21") == {"A"}
    assert platforms("2025-05-21", "2025-12-31") == {"A", "C"}
    only_s1c = f"{BURST_FILTER} and PlatformSerialIdentifier eq 'C'"
    assert query(bursts_url, filter=only_s1c, count="true").json()["@odata.count"] > 10


@pytest.mark.parametrize(
    ("options", "bad_value"),
    [
        ({"top": "1001"}, "1001"),
        ({"skip": "10001"}, "10001"),
        ({"top": "-1"}, "-1"),
        ({"top": "many"}, "many"),
    ],
)
def test_paging_options_out_of_range_are_refused_with_422(
    bursts_url: str, options: dict[str, str], bad_value: str
) -> None:
    response = query(bursts_url, filter=BURST_FILTER, **options)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", f"${next(iter(options))}"]
    assert error["input"] == bad_value


@pytest.mark.parametrize(
    ("filter_", "named"),
    [
        ("BurstId eq 30343 or SwathIdentifier eq 'IW2'", "every side of an 'or'"),
        ("OData.CSC.Intersects(area=geography'SRID=32632;POLYGON((0 0,1 0,1 1,0 0))')", "SRID=4326"),
        ("OData.CSC.Intersects(area=geography'SRID=4326;POINT(10 46)')", "POLYGON or MULTIPOLYGON"),
        (
            "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((600000 5e6,6e5 5.1e6,7e5 5e6,6e5 5e6))')",
            "degrees",
        ),
        ("OData.CSC.Intersects(geography'SRID=4326;POLYGON((10 46,11 46,11 47,10 46))')", "'area'"),
        ("BurstId eq 30343 and contains(Name,'IW2')", "contains"),
        ("BurstId eq 30343 and CloudCover lt 10", "'CloudCover'"),
        ("BurstId eq 30343 and SwathIdentifier in ('IW1','IW2')", "'in'"),
        ("BurstId eq '30343'", "BurstId"),
        ("BurstId eq 30343 and ContentDate/Start gt '2023-07-01'", "ContentDate/Start"),
        ("(BurstId eq 30343", "'('"),
        ("SwathIdentifier eq 'IW2'", "BurstId eq"),
        ("", "BurstId eq"),
    ],
)
def test_unsupported_filters_are_refused_with_400_naming_the_part(
    bursts_url: str, filter_: str, named: str
) -> None:
    response = query(bursts_url, filter=filter_)
    assert response.status_code == 400
    assert named in response.json()["detail"]


def test_an_unsupported_orderby_is_refused_with_400(bursts_url: str) -> None:
    response = query(bursts_url, filter=BURST_FILTER, orderby="Name desc")
    assert response.status_code == 400
    assert "$orderby" in response.json()["detail"]


def test_the_backend_serves_the_catalogue_without_a_burst_map(tmp_path: Path) -> None:
    config = BackendConfig(
        data_dir=tmp_path, port=0, bursts_file=None, catalogue_now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    with running_backend(config) as url:
        body = query(f"{url}/odata/v1/Bursts", filter="BurstId eq 30343 and SwathIdentifier eq 'IW2'").json()
    assert body["value"][0]["GeoFootprint"]["type"] == "Polygon"


# The demo's Ortler area: its mapped bursts of relative orbit 15 lie over it, with synthetic neighbours.
ORTLER = "POLYGON((10.50 46.45,10.65 46.45,10.65 46.55,10.50 46.55,10.50 46.45))"
ORTLER_FILTER = (
    f"OData.CSC.Intersects(area=geography'SRID=4326;{ORTLER}') and PolarisationChannels eq 'VV' "
    "and ContentDate/Start ge 2023-07-01T00:00:00.000Z and ContentDate/Start le 2023-07-31T23:59:59.000Z"
)


def footprints(records: list[dict]) -> dict[tuple[int, str], shapely.Geometry]:
    return {(r["BurstId"], r["SwathIdentifier"]): shapely.geometry.shape(r["GeoFootprint"]) for r in records}


def test_intersects_finds_every_burst_whose_footprint_meets_the_area_and_pages(bursts_url: str) -> None:
    records, pages = all_pages(bursts_url, filter=ORTLER_FILTER, top="10")

    found = footprints(records)
    area = shapely.from_wkt(ORTLER)
    assert pages >= 2
    assert (30343, "IW2") in found
    assert all(footprint.intersects(area) for footprint in found.values())
    assert {r["PolarisationChannels"] for r in records} == {"VV"}
    assert all("2023-07-01" <= start[:10] <= "2023-07-31" for start in starts(records))
    # a burst just beside the area, on the same track, is not found
    assert (30340, "IW2") not in found


def test_intersects_takes_a_multipolygon_and_equals_the_or_of_its_parts(bursts_url: str) -> None:
    far = "POLYGON((-70.10 -33.10,-70.00 -33.10,-70.00 -33.00,-70.10 -33.00,-70.10 -33.10))"
    multi = f"MULTIPOLYGON({ORTLER[7:]},{far[7:]})"
    dates = "ContentDate/Start ge 2023-07-01T00:00:00Z and ContentDate/Start le 2023-07-13T00:00:00Z"

    by_multipolygon, _ = all_pages(
        bursts_url, filter=f"OData.CSC.Intersects(area=geography'SRID=4326;{multi}') and {dates}", top="1000"
    )
    by_or, _ = all_pages(
        bursts_url,
        filter=f"(OData.CSC.Intersects(area=geography'SRID=4326;{ORTLER}') or "
        f"OData.CSC.Intersects(location=Footprint,area=geography'SRID=4326;{far}')) and {dates}",
        top="1000",
    )

    assert [r["Id"] for r in by_multipolygon] == [r["Id"] for r in by_or]
    assert {round(shapely.geometry.shape(r["GeoFootprint"]).centroid.y) for r in by_or} >= {46, -33}


def test_or_joins_bursts_and_not_excludes(bursts_url: str) -> None:
    two = f"(BurstId eq 30343 or BurstId eq 30344) and SwathIdentifier eq 'IW2' and {SUMMER_2023}"
    records = query(bursts_url, filter=two, top="1000").json()["value"]
    assert {r["BurstId"] for r in records} == {30343, 30344}

    without_vh = query(bursts_url, filter=f"{two} and not PolarisationChannels eq 'VH'", top="1000").json()
    assert {r["PolarisationChannels"] for r in without_vh["value"]} == {"VV"}
    assert len(without_vh["value"]) * 2 == len(records)
