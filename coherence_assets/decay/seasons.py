"""Meteorological seasons, the grouping of the Global Seasonal Sentinel-1 Interferometric Coherence data set."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

# December opens the winter of the next year: 2023-12-15 belongs to 2024-DJF (Dec 2023 - Feb 2024),
# so that one season is never split across two labels.
_SEASON_OF_MONTH = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM"}
_SEASON_OF_MONTH |= {6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}


def season_of(day: date | np.datetime64 | pd.Timestamp) -> str:
    """The season label of a pair's reference date, such as ``2023-JJA`` or ``2024-DJF`` (for Dec 2023)."""
    timestamp = pd.Timestamp(day)
    year = timestamp.year + (1 if timestamp.month == 12 else 0)
    return f"{year}-{_SEASON_OF_MONTH[timestamp.month]}"


def season_start(label: str) -> date:
    """First day of a season label: ``2024-DJF`` starts on 2023-12-01."""
    year, code = label.split("-")
    first_month = {"DJF": 12, "MAM": 3, "JJA": 6, "SON": 9}[code]
    return date(int(year) - (1 if code == "DJF" else 0), first_month, 1)
