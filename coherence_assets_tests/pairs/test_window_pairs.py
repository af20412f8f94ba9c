"""An answer that lacks acquisitions of the previous pair table is refused; new ones are welcome."""

import datetime as dt

import pytest

from coherence_assets.catalogue.odata_client import BurstAcquisition
from coherence_assets.pairs.pairing import build_pairs
from coherence_assets.pairs.window_pairs import (
    CatalogueAnswerShrankError,
    WindowPairs,
    lost_acquisition_dates,
    require_no_lost_acquisitions,
)

BURST = "t015_030343_iw2"
WINDOW_START, WINDOW_END = dt.date(2023, 7, 1), dt.date(2023, 9, 30)
QUERY = "http://catalogue.example/odata/v1/Bursts?$filter=BurstId eq 30343"


def cycle(first: dt.date, last: dt.date, step: int = 12) -> list[dt.date]:
    return [first + dt.timedelta(days=step * n) for n in range((last - first).days // step + 1)]


def answer(dates: list[dt.date], baselines: tuple[int, ...] = (12,)) -> WindowPairs:
    acquisitions = {
        day: BurstAcquisition(
            "id",
            30343,
            "IW2",
            15,
            "VV",
            dt.datetime.combine(day, dt.time(17, 15), tzinfo=dt.UTC),
            f"S1A_{day:%Y%m%d}",
            "A",
        )
        for day in dates
    }
    return WindowPairs(
        pairs=build_pairs(BURST, acquisitions, WINDOW_START, WINDOW_END, baselines),
        records=len(dates),
        acquisition_dates=sorted(dates),
        missing_dates=[],
        query_start=dt.datetime.combine(WINDOW_START, dt.time.min, tzinfo=dt.UTC),
        query_end=dt.datetime.combine(
            WINDOW_END + dt.timedelta(days=max(baselines)), dt.time(23, 59, 59), tzinfo=dt.UTC
        ),
        query=QUERY,
    )


FULL = cycle(dt.date(2023, 7, 3), dt.date(2023, 10, 7))


def test_an_answer_with_every_previous_date_and_new_ones_loses_nothing():
    previous = answer(FULL[:5]).pairs
    assert lost_acquisition_dates(previous, answer(FULL)) == []
    require_no_lost_acquisitions(previous, answer(FULL), "pairs.parquet")


def test_an_empty_answer_loses_every_previous_date_and_names_the_query():
    previous = answer(FULL).pairs
    with pytest.raises(CatalogueAnswerShrankError) as refused:
        require_no_lost_acquisitions(previous, answer([]), "insar_pairs/t015_030343_iw2/2023-07-01.parquet")
    message = str(refused.value)
    assert "\n" not in message
    assert f"answered 0 record(s) without {len(FULL)} acquisition date(s)" in message
    assert "insar_pairs/t015_030343_iw2/2023-07-01.parquet" in message
    assert f"query: GET {QUERY}." in message
    assert ", ".join(day.isoformat() for day in FULL) in message


def test_a_shorter_answer_names_exactly_the_dates_it_lacks():
    previous = answer(FULL).pairs
    shorter = [day for day in FULL if day != FULL[3]]
    assert lost_acquisition_dates(previous, answer(shorter)) == [FULL[3]]


def test_dates_outside_the_new_query_range_are_not_counted_as_lost():
    """A 24-day baseline reached further past the window than today's 12-day query asks."""
    long_reach = cycle(dt.date(2023, 7, 3), dt.date(2023, 10, 19))
    previous = answer(long_reach, baselines=(12, 24)).pairs
    assert previous["secondary_date"].max() > answer(FULL).query_end.date()
    assert lost_acquisition_dates(previous, answer(FULL)) == []
