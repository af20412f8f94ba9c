"""Calendar-quarter date windows, the ``window`` partition's unit.

A window key is the first day of a quarter (``2023-07-01`` is July to September 2023).
Kept free of Dagster so that domain code and the sensor share one definition.
"""

from __future__ import annotations

import datetime as dt

FIRST_WINDOW = dt.date(2014, 10, 1)  # Sentinel-1A's first full quarter of operations
QUARTER_START_MONTHS = (1, 4, 7, 10)


def parse_window_key(key: str) -> dt.date:
    """The window's first day; refuses a date that does not start a quarter."""
    try:
        start = dt.date.fromisoformat(key)
    except ValueError as error:
        raise ValueError(f"window {key!r} is not a date of the form YYYY-MM-DD, e.g. '2023-07-01'") from error
    if start.day != 1 or start.month not in QUARTER_START_MONTHS:
        raise ValueError(
            f"window {key!r} does not start a calendar quarter: use YYYY-01-01, YYYY-04-01, YYYY-07-01 or YYYY-10-01"
        )
    if start < FIRST_WINDOW:
        raise ValueError(f"window {key!r} is before the first window {FIRST_WINDOW.isoformat()}")
    return start


def window_last_day(start: dt.date) -> dt.date:
    """Last day (inclusive) of the quarter that begins on ``start``."""
    next_month = start.month + 3
    next_start = dt.date(start.year + (next_month > 12), (next_month - 1) % 12 + 1, 1)
    return next_start - dt.timedelta(days=1)


def window_key_of(day: dt.date) -> str:
    """Key of the window that holds ``day``."""
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1).isoformat()


def windows_still_growing(day: dt.date, longest_baseline_days: int, publication_delay_days: int) -> list[str]:
    """Keys of the windows that can still gain pairs on ``day``, oldest first.

    A pair belongs to the window of its reference date, so the last pairs of a window appear
    only once the secondary, up to one longest baseline into the next window, is published.
    """
    current = window_key_of(day)
    previous_last_day = parse_window_key(current) - dt.timedelta(days=1)
    reach = (day - previous_last_day).days
    if reach <= longest_baseline_days + publication_delay_days and previous_last_day >= FIRST_WINDOW:
        return [window_key_of(previous_last_day), current]
    return [current]
