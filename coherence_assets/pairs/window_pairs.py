"""The pair table of one burst and window: ask the catalogue, deduplicate, pair, explain.

The archive only grows, so an answer that lacks acquisitions an earlier table was built from
is a catalogue outage (an empty 200, a lagging index), not news: it is refused rather than
allowed to shrink a table whose pairs may already be paid for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.pairs.pairing import acquisitions_by_date, build_pairs, missing_cycle_dates


@dataclass(frozen=True)
class WindowPairs:
    """The pairs and what the catalogue said: records, distinct dates, gaps in the cycle."""

    pairs: pd.DataFrame
    records: int
    acquisition_dates: list[dt.date]
    missing_dates: list[dt.date]
    query_start: dt.datetime
    query_end: dt.datetime
    query: str

    @property
    def empty_reason(self) -> str | None:
        if not self.pairs.empty:
            return None
        if len(self.acquisition_dates) < 2:
            return (
                f"only {len(self.acquisition_dates)} acquisition date(s) between {self.query_start:%Y-%m-%d} "
                f"and {self.query_end:%Y-%m-%d}: at least two are needed for a pair"
            )
        return "no two acquisitions are exactly one configured temporal baseline apart with the reference in the window"


def pairs_for_window(
    client: BurstCatalogueClient,
    burst: BurstKey,
    polarisation: str,
    window_start: dt.date,
    window_last_day: dt.date,
    baselines_days: Sequence[int],
) -> WindowPairs:
    """Ask for [window start, window end + longest baseline] so that pairs at the window's end survive."""
    query_start = dt.datetime.combine(window_start, dt.time.min, tzinfo=dt.UTC)
    query_end = dt.datetime.combine(
        window_last_day + dt.timedelta(days=max(baselines_days)), dt.time(23, 59, 59, 999000), tzinfo=dt.UTC
    )
    acquisitions = client.search(burst, polarisation, query_start, query_end)
    by_date = acquisitions_by_date(acquisitions)
    return WindowPairs(
        pairs=build_pairs(str(burst), by_date, window_start, window_last_day, baselines_days),
        records=len(acquisitions),
        acquisition_dates=list(by_date),
        missing_dates=missing_cycle_dates(list(by_date), window_start, query_end.date()),
        query_start=query_start,
        query_end=query_end,
        query=client.search_query(burst, polarisation, query_start, query_end),
    )


class CatalogueAnswerShrankError(RuntimeError):
    """The catalogue answered without acquisitions that the existing pair table was built from."""


def lost_acquisition_dates(previous_pairs: pd.DataFrame, answer: WindowPairs) -> list[dt.date]:
    """Dates of the previous table's pairs, inside the answer's query range, that the answer lacks.

    Dates outside the range (a longer baseline configured before) were not asked for, so they
    are not counted as lost; dates the answer adds are welcome.
    """
    first, last = answer.query_start.date(), answer.query_end.date()
    dates = pd.concat([previous_pairs["reference_date"], previous_pairs["secondary_date"]])
    previous = set(pd.to_datetime(dates).dt.date)
    answered = set(answer.acquisition_dates)
    return sorted(day for day in previous if first <= day <= last and day not in answered)


def require_no_lost_acquisitions(previous_pairs: pd.DataFrame, answer: WindowPairs, table: str) -> None:
    """Raise :class:`CatalogueAnswerShrankError`, in one line naming the query, if ``answer`` lost dates of ``table``."""
    lost = lost_acquisition_dates(previous_pairs, answer)
    if not lost:
        return
    shown = ", ".join(day.isoformat() for day in lost[:10]) + (
        f" and {len(lost) - 10} more" if len(lost) > 10 else ""
    )
    raise CatalogueAnswerShrankError(
        f"the catalogue answered {answer.records} record(s) without {len(lost)} acquisition date(s) that the pair "
        f"table {table} was built from ({shown}); query: GET {answer.query}. The table is kept: materialise "
        "insar_pairs again when the catalogue answers in full (delete the table first if those acquisitions "
        "were withdrawn for good)"
    )
