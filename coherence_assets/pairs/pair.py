"""An InSAR pair: the reference and the secondary acquisition dates, in that order."""

from __future__ import annotations

import datetime as dt

Pair = tuple[dt.date, dt.date]


def format_pair(pair: Pair) -> str:
    """``2023-07-05/2023-07-17``: how logs, metadata and errors name a pair."""
    return f"{pair[0].isoformat()}/{pair[1].isoformat()}"
