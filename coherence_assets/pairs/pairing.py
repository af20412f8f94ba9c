"""InSAR pairs from a burst's acquisitions: every reference date in a window and the date
exactly one temporal baseline later.

A pair belongs to the window that holds its reference date, so the acquisitions must reach
one longest baseline past the window's end: no pair is lost at a window edge.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence

import pandas as pd

from coherence_assets.catalogue.odata_client import BurstAcquisition

# The dates name a pair (files, partitions, ledgers); the times beside them are the two
# acquisitions' sensing starts from the catalogue (UTC), for outputs that state when they were taken.
PAIR_COLUMNS = (
    "burst",
    "reference_date",
    "secondary_date",
    "reference_time",
    "secondary_time",
    "temporal_baseline_days",
    "reference_product",
    "secondary_product",
    "orbit_direction",
)


def acquisitions_by_date(acquisitions: Iterable[BurstAcquisition]) -> dict[dt.date, BurstAcquisition]:
    """One record per acquisition date.

    The catalogue lists some bursts twice, from two overlapping parent products; the earliest
    record of a date wins, so re-running on the same records picks the same product.
    """
    chosen: dict[dt.date, BurstAcquisition] = {}
    for acquisition in acquisitions:
        known = chosen.get(acquisition.date)
        if known is None or (acquisition.start, acquisition.parent_product_name) < (
            known.start,
            known.parent_product_name,
        ):
            chosen[acquisition.date] = acquisition
    return {date: chosen[date] for date in sorted(chosen)}


def build_pairs(
    burst: str,
    acquisitions: dict[dt.date, BurstAcquisition],
    window_start: dt.date,
    window_last_day: dt.date,
    baselines_days: Sequence[int],
) -> pd.DataFrame:
    """Every pair whose reference date lies in the window and whose secondary is one baseline later.

    Sorting the dates is the O(n log n) step; each partner is then a dict lookup.
    """
    dates = sorted(acquisitions)
    rows = []
    for reference_date in (day for day in dates if window_start <= day <= window_last_day):
        reference = acquisitions[reference_date]
        for baseline in sorted(set(baselines_days)):
            secondary = acquisitions.get(reference_date + dt.timedelta(days=baseline))
            if secondary is not None:
                rows.append(
                    (
                        burst,
                        reference.date,
                        secondary.date,
                        reference.start,
                        secondary.start,
                        baseline,
                        reference.parent_product_name,
                        secondary.parent_product_name,
                        reference.orbit_direction,
                    )
                )
    pairs = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    pairs["temporal_baseline_days"] = pairs["temporal_baseline_days"].astype("int64")
    for column in ("reference_time", "secondary_time"):
        pairs[column] = pd.to_datetime(pairs[column], utc=True)
    return pairs.sort_values(["reference_date", "temporal_baseline_days"]).reset_index(drop=True)


def missing_cycle_dates(dates: Sequence[dt.date], first: dt.date, last: dt.date) -> list[dt.date]:
    """Dates the repeat cycle predicts in [first, last] that have no acquisition.

    The cycle's step is the most common gap between acquisitions (6 days with two satellites,
    12 with one), anchored at an actual acquisition.
    """
    ordered = sorted(set(dates))
    if len(ordered) < 2:
        return []
    gaps = Counter((later - earlier).days for earlier, later in itertools.pairwise(ordered))
    step = min(gap for gap, count in gaps.items() if count == max(gaps.values()))
    anchor = ordered[0]
    expected_first = anchor - dt.timedelta(days=step * ((anchor - first).days // step))
    present = set(ordered)
    missing = []
    day = expected_first
    while day <= last:
        if day >= first and day not in present:
            missing.append(day)
        day += dt.timedelta(days=step)
    return missing
