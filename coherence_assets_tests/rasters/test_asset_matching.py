"""Result assets are matched to pairs by STAC dates first, then by either CDSE naming."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from coherence_assets.raster_files.names import parse_raster_file_name, raster_file_name
from coherence_assets.rasters.asset_matching import (
    ResultAssetRef,
    asset_refs_from_stac,
    match_assets_to_pairs,
    safe_target_path,
)

JULY_1 = (date(2023, 7, 1), date(2023, 7, 13))
JULY_13 = (date(2023, 7, 13), date(2023, 7, 25))


def asset(name: str, **fields) -> ResultAssetRef:
    return ResultAssetRef(name=name, href=f"https://backend.example/results/{name}", **fields)


def test_stac_item_dates_and_size_are_read():
    item = {
        "properties": {"datetime": "2023-07-01T05:27:10Z", "sar:datetime_secondary": "2023-07-13T05:27:11Z"},
        "assets": {
            "coherence": {
                "href": "https://x/c.tif",
                "type": "image/tiff; application=geotiff",
                "file:size": 42,
            }
        },
    }

    (ref,) = asset_refs_from_stac(item)

    assert ref == ResultAssetRef(
        name="coherence",
        href="https://x/c.tif",
        size=42,
        media_type="image/tiff; application=geotiff",
        reference_datetime=datetime(2023, 7, 1, 5, 27, 10, tzinfo=UTC),
        secondary_datetime=datetime(2023, 7, 13, 5, 27, 11, tzinfo=UTC),
    )


def test_stac_dates_win_over_a_name_without_dates():
    stac_asset = asset(
        "result.tif",
        reference_datetime=datetime(2023, 7, 13, 5, 27),
        secondary_datetime=datetime(2023, 7, 25, 5, 27),
    )

    result = match_assets_to_pairs([stac_asset], [JULY_1, JULY_13])

    assert result.matched == {JULY_13: stac_asset}
    assert result.pairs_without_asset == [JULY_1]


def test_sentinel1_sar_coherence_names_give_both_dates():
    first = asset("S1_coh_2images_20230701T052710_20230713T052711.tif")
    second = asset("S1_coh_2images_20230713T052711_20230725T052712.tif")

    result = match_assets_to_pairs([second, first], [JULY_1, JULY_13])

    assert result.matched == {JULY_1: first, JULY_13: second}
    assert result.unmatched_assets == []
    assert result.pairs_without_asset == []


def test_openeo_date_names_match_the_pair_with_that_reference_date():
    old_style = asset("openEO_2023-07-13Z.tif")

    assert match_assets_to_pairs([old_style], [JULY_1, JULY_13]).matched == {JULY_13: old_style}


def test_reference_date_shared_by_two_pairs_is_ambiguous():
    with pytest.raises(ValueError, match=r"'openEO_2023-07-01Z.tif' names only reference date 2023-07-01"):
        match_assets_to_pairs(
            [asset("openEO_2023-07-01Z.tif")], [JULY_1, (date(2023, 7, 1), date(2023, 7, 25))]
        )


def test_non_tif_assets_are_ignored_and_unknown_pairs_reported():
    metadata = asset("job-results.json", media_type="application/json")
    stranger = asset("S1_coh_2images_20220101T000000_20220113T000000.tif")
    nameless = asset("data.tif")

    result = match_assets_to_pairs([metadata, stranger, nameless], [JULY_1])

    assert result.matched == {}
    assert result.unmatched_assets == [stranger, nameless]
    assert result.pairs_without_asset == [JULY_1]


@pytest.mark.parametrize("listed_first", [0, 1])
def test_two_assets_for_one_pair_keep_the_same_one_whatever_the_order_and_report_the_other(listed_first: int):
    """Two burst records of one acquisition (two parent products), as the process does not dedupe them."""
    duplicates = [
        asset("S1_coh_2images_20230701T052710_20230713T052711.tif"),
        asset("S1_coh_2images_20230701T052712_20230713T052713.tif"),
    ]
    listed = duplicates[listed_first:] + duplicates[:listed_first]
    next_pair = asset("S1_coh_2images_20230713T052711_20230725T052711.tif")

    result = match_assets_to_pairs([*listed, next_pair], [JULY_1, JULY_13])

    assert result.matched == {JULY_1: duplicates[0], JULY_13: next_pair}
    assert result.duplicate_assets == {JULY_1: [duplicates[1]]}
    assert result.pairs_without_asset == [] and result.unmatched_assets == []


def test_raster_file_name_round_trips():
    name = raster_file_name(*JULY_1)

    assert name == "20230701_20230713.tif"
    assert parse_raster_file_name(f"coherence_rasters/t015_030343_iw2/2023-07-01/{name}") == JULY_1


def test_raster_file_name_refuses_a_secondary_before_the_reference():
    with pytest.raises(ValueError, match="must be after reference date"):
        raster_file_name(date(2023, 7, 13), date(2023, 7, 1))


def test_parse_raster_file_name_refuses_other_names():
    with pytest.raises(
        ValueError, match=r"'openEO_2023-07-01Z\.tif' is not of the form YYYYMMDD_YYYYMMDD\.tif"
    ):
        parse_raster_file_name("openEO_2023-07-01Z.tif")


def test_safe_target_path_joins_plain_names():
    assert (
        safe_target_path("s3://bucket/rasters/", "20230701_20230713.tif")
        == "s3://bucket/rasters/20230701_20230713.tif"
    )


@pytest.mark.parametrize(
    "name",
    ["", "C:\\x.tif", "c:/x.tif", "s3://other/x.tif", "a//b.tif", "./x.tif", "x.tif\x00.png", "%2fetc"],
)
def test_safe_target_path_refuses_names_that_could_escape(name):
    with pytest.raises(ValueError, match="is refused"):
        safe_target_path("/data/rasters", name)
