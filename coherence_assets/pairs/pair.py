"""An InSAR pair: the reference and the secondary acquisition dates, in that order."""

from __future__ import annotations

import datetime as dt

Pair = tuple[dt.date, dt.date]


def format_pair(pair: Pair) -> str:
    """``2023-07-05/2023-07-17``: how logs, metadata and errors name a pair."""
    return f"{pair[0].isoformat()}/{pair[1].isoformat()}"


def summarise_pairs(pairs: list[Pair], shown: int = 3) -> str:
    """The first ``shown`` pairs and how many more: a list of any length stays one short line."""
    names = ", ".join(format_pair(pair) for pair in pairs[:shown])
    return names + (f" and {len(pairs) - shown} more" if len(pairs) > shown else "")
