"""The pair table of one burst and window: ask the catalogue, deduplicate, pair, explain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.pairs.pairing import build_pairs, missing_cycle_dates, products_by_date


@dataclass(frozen=True)
class WindowPairs:
    """The pairs and what the catalogue said: records, distinct dates, gaps in the cycle."""

    pairs: pd.DataFrame
    records: int
    acquisition_dates: list[dt.date]
    missing_dates: list[dt.date]
    query_start: dt.datetime
    query_end: dt.datetime

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
    acquisitions = client.search(
        burst.burst_id, burst.subswath, burst.relative_orbit, polarisation, query_start, query_end
    )
    products = products_by_date(acquisitions)
    return WindowPairs(
        pairs=build_pairs(str(burst), products, window_start, window_last_day, baselines_days),
        records=len(acquisitions),
        acquisition_dates=list(products),
        missing_dates=missing_cycle_dates(list(products), window_start, query_end.date()),
        query_start=query_start,
        query_end=query_end,
    )
