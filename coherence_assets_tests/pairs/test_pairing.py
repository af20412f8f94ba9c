import datetime as dt

from coherence_assets.catalogue.odata_client import BurstAcquisition
from coherence_assets.pairs.pairing import build_pairs, missing_cycle_dates, products_by_date

D = dt.date


def acquisition(day: dt.date, product: str, minute: int = 0) -> BurstAcquisition:
    start = dt.datetime.combine(day, dt.time(17, minute), tzinfo=dt.UTC)
    return BurstAcquisition("id", 30343, "IW2", 15, "VV", start, product, "A")


def test_duplicate_records_of_a_date_keep_the_earliest_product():
    products = products_by_date(
        [
            acquisition(D(2023, 7, 5), "late", 1),
            acquisition(D(2023, 7, 5), "early", 0),
            acquisition(D(2023, 7, 17), "x"),
        ]
    )
    assert products == {D(2023, 7, 5): "early", D(2023, 7, 17): "x"}


def test_pairs_keep_references_in_window_and_reach_past_its_end():
    dates = [D(2023, 6, 29), D(2023, 7, 11), D(2023, 9, 21), D(2023, 10, 3), D(2023, 10, 15)]
    products = {day: f"p{day:%m%d}" for day in dates}
    pairs = build_pairs("t015_030343_iw2", products, D(2023, 7, 1), D(2023, 9, 30), [12])
    assert list(zip(pairs.reference_date, pairs.secondary_date, strict=True)) == [
        (D(2023, 9, 21), D(2023, 10, 3))
    ]
    assert list(pairs.columns) == [
        "burst",
        "reference_date",
        "secondary_date",
        "temporal_baseline_days",
        "reference_product",
        "secondary_product",
    ]
    assert pairs.reference_product.iloc[0] == "p0921" and pairs.secondary_product.iloc[0] == "p1003"


def test_several_baselines_pair_each_date_once_per_baseline():
    dates = [D(2023, 7, 5) + dt.timedelta(days=6 * i) for i in range(6)]
    pairs = build_pairs("b", dict.fromkeys(dates, "p"), D(2023, 7, 1), D(2023, 9, 30), [12, 6, 12])
    assert sorted(pairs.temporal_baseline_days.value_counts().items()) == [(6, 5), (12, 4)]


def test_a_missing_acquisition_breaks_only_its_pairs():
    dates = [D(2023, 7, 5), D(2023, 7, 17), D(2023, 8, 10)]
    pairs = build_pairs("b", dict.fromkeys(dates, "p"), D(2023, 7, 1), D(2023, 9, 30), [12])
    assert list(pairs.reference_date) == [D(2023, 7, 5)]


def test_fewer_than_two_dates_make_an_empty_table_with_the_columns():
    pairs = build_pairs("b", {D(2023, 7, 5): "p"}, D(2023, 7, 1), D(2023, 9, 30), [12])
    assert pairs.empty and "temporal_baseline_days" in pairs.columns


def test_missing_cycle_dates_follow_the_most_common_gap():
    dates = [D(2023, 7, 5), D(2023, 7, 17), D(2023, 8, 10), D(2023, 8, 22)]
    assert missing_cycle_dates(dates, D(2023, 7, 1), D(2023, 8, 31)) == [D(2023, 7, 29)]
