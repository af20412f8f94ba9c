import datetime as dt

from coherence_assets.catalogue.odata_client import BurstAcquisition
from coherence_assets.pairs.pairing import (
    PAIR_COLUMNS,
    acquisitions_by_date,
    build_pairs,
    missing_cycle_dates,
)

D = dt.date


def acquisition(day: dt.date, product: str = "p", minute: int = 0) -> BurstAcquisition:
    start = dt.datetime.combine(day, dt.time(17, minute, 8, 123456), tzinfo=dt.UTC)
    return BurstAcquisition("id", 30343, "IW2", 15, "VV", start, product, "A", "ASCENDING")


def by_date(dates: list[dt.date]) -> dict[dt.date, BurstAcquisition]:
    return {day: acquisition(day, f"p{day:%m%d}") for day in dates}


def test_duplicate_records_of_a_date_keep_the_earliest_product():
    chosen = acquisitions_by_date(
        [
            acquisition(D(2023, 7, 5), "late", 1),
            acquisition(D(2023, 7, 5), "early", 0),
            acquisition(D(2023, 7, 17), "x"),
        ]
    )
    assert {day: record.parent_product_name for day, record in chosen.items()} == {
        D(2023, 7, 5): "early",
        D(2023, 7, 17): "x",
    }


def test_pairs_keep_references_in_window_and_reach_past_its_end():
    dates = [D(2023, 6, 29), D(2023, 7, 11), D(2023, 9, 21), D(2023, 10, 3), D(2023, 10, 15)]
    pairs = build_pairs("t015_030343_iw2", by_date(dates), D(2023, 7, 1), D(2023, 9, 30), [12])
    assert list(zip(pairs.reference_date, pairs.secondary_date, strict=True)) == [
        (D(2023, 9, 21), D(2023, 10, 3))
    ]
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert pairs.reference_product.iloc[0] == "p0921" and pairs.secondary_product.iloc[0] == "p1003"
    assert pairs.orbit_direction.iloc[0] == "ASCENDING"


def test_pairs_carry_both_acquisition_times_to_the_microsecond_beside_their_dates():
    dates = [D(2023, 7, 5), D(2023, 7, 17)]
    pairs = build_pairs("b", by_date(dates), D(2023, 7, 1), D(2023, 9, 30), [12])
    assert pairs.reference_time.iloc[0].to_pydatetime() == acquisition(D(2023, 7, 5)).start
    assert pairs.secondary_time.iloc[0].to_pydatetime() == acquisition(D(2023, 7, 17)).start
    assert str(pairs.reference_time.dtype) == "datetime64[ns, UTC]"
    assert pairs.reference_date.iloc[0] == D(2023, 7, 5)  # the dates keep their meaning and type


def test_several_baselines_pair_each_date_once_per_baseline():
    dates = [D(2023, 7, 5) + dt.timedelta(days=6 * i) for i in range(6)]
    pairs = build_pairs("b", by_date(dates), D(2023, 7, 1), D(2023, 9, 30), [12, 6, 12])
    assert sorted(pairs.temporal_baseline_days.value_counts().items()) == [(6, 5), (12, 4)]


def test_a_missing_acquisition_breaks_only_its_pairs():
    dates = [D(2023, 7, 5), D(2023, 7, 17), D(2023, 8, 10)]
    pairs = build_pairs("b", by_date(dates), D(2023, 7, 1), D(2023, 9, 30), [12])
    assert list(pairs.reference_date) == [D(2023, 7, 5)]


def test_fewer_than_two_dates_make_an_empty_table_with_the_columns():
    pairs = build_pairs("b", by_date([D(2023, 7, 5)]), D(2023, 7, 1), D(2023, 9, 30), [12])
    assert pairs.empty and list(pairs.columns) == list(PAIR_COLUMNS)


def test_missing_cycle_dates_follow_the_most_common_gap():
    dates = [D(2023, 7, 5), D(2023, 7, 17), D(2023, 8, 10), D(2023, 8, 22)]
    assert missing_cycle_dates(dates, D(2023, 7, 1), D(2023, 8, 31)) == [D(2023, 7, 29)]
