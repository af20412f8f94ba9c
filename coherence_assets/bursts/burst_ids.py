"""ESA burst ids, JPL/OPERA-style burst keys, and what a burst id says about its track.

ESA counts bursts along the whole 12-day repeat cycle, per acquisition mode, from the ascending
node crossing (ANX) of relative orbit 1 (Sentinel-1 Level 1 Detailed Algorithm Definition,
MPC-0307 issue 2/4, eq. 9-89 to 9-91 and table 9-7)::

    burst_id = 1 + floor((dt_b - T_pre) / T_beam),  dt_b = t_b - t_anx + (relative_orbit - 1) * T_orb

with ``t_b`` the mid-burst time, ``T_orb = 12 d / 175`` and each mode's own preamble ``T_pre``
and burst cycle ``T_beam`` (IW: 2.299849 s, 2.758273 s; EW: 2.299970 s, 3.038376 s). So a burst
id and its mode imply the relative orbit and where on the orbit the burst lies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

ORBIT_PERIOD_SECONDS = 12 * 86400 / 175
RELATIVE_ORBITS = 175
IW_SUBSWATHS = ("IW1", "IW2", "IW3")
EW_SUBSWATHS = ("EW1", "EW2", "EW3", "EW4", "EW5")
SUBSWATHS = IW_SUBSWATHS + EW_SUBSWATHS

_BURST_KEY = re.compile(r"^t(\d{3})_(\d{6})_((?:iw[1-3])|(?:ew[1-5]))$")


@dataclass(frozen=True)
class BurstTiming:
    """One acquisition mode's burst timing: the preamble before the first burst and the burst cycle."""

    preamble_seconds: float
    cycle_seconds: float

    @property
    def max_burst_id(self) -> int:
        """The last burst id of the 12-day cycle."""
        return 1 + math.floor(
            (RELATIVE_ORBITS * ORBIT_PERIOD_SECONDS - self.preamble_seconds) / self.cycle_seconds
        )


BURST_TIMING = {
    "IW": BurstTiming(preamble_seconds=2.299849, cycle_seconds=2.758273),
    "EW": BurstTiming(preamble_seconds=2.299970, cycle_seconds=3.038376),
}
MAX_BURST_ID = max(timing.max_burst_id for timing in BURST_TIMING.values())


def burst_timing(subswath: str) -> BurstTiming:
    """The burst timing of the mode of ``subswath`` (``IW2`` -> IW)."""
    if subswath.upper() not in SUBSWATHS:
        raise ValueError(f"sub-swath {subswath!r} is not one of {', '.join(SUBSWATHS)}")
    return BURST_TIMING[subswath[:2].upper()]


@dataclass(frozen=True, order=True)
class BurstKey:
    """One burst of one subswath, as the ``burst`` partition names it (``t015_030343_iw2``)."""

    relative_orbit: int
    burst_id: int
    subswath: str

    def __str__(self) -> str:
        return f"t{self.relative_orbit:03d}_{self.burst_id:06d}_{self.subswath.lower()}"

    @classmethod
    def parse(cls, key: str) -> BurstKey:
        match = _BURST_KEY.match(key)
        if match is None:
            raise ValueError(
                f"burst key {key!r} is not of the form t<orbit:3 digits>_<burst id:6 digits>_<subswath>, "
                "e.g. 't015_030343_iw2'"
            )
        return cls(int(match.group(1)), int(match.group(2)), match.group(3).upper())


def orbit_position_of_burst_id(burst_id: int, subswath: str) -> tuple[int, float]:
    """Relative orbit implied by ``burst_id`` in the mode of ``subswath``, and the burst's time since
    ANX as a fraction of an orbit (the middle of the burst's cycle)."""
    timing = burst_timing(subswath)
    if not 1 <= burst_id <= timing.max_burst_id:
        raise ValueError(
            f"{subswath[:2].upper()} burst ids run from 1 to {timing.max_burst_id}, got {burst_id}"
        )
    seconds_in_cycle = timing.preamble_seconds + (burst_id - 0.5) * timing.cycle_seconds
    orbit_index, seconds_since_anx = divmod(seconds_in_cycle, ORBIT_PERIOD_SECONDS)
    return int(orbit_index) % RELATIVE_ORBITS + 1, seconds_since_anx / ORBIT_PERIOD_SECONDS


def relative_orbit_of_burst_id(burst_id: int, subswath: str) -> int:
    return orbit_position_of_burst_id(burst_id, subswath)[0]


def is_ascending_burst(burst_id: int, subswath: str) -> bool:
    """True where the burst lies between the southernmost point and the northernmost point of the orbit."""
    fraction = orbit_position_of_burst_id(burst_id, subswath)[1]
    return fraction < 0.25 or fraction >= 0.75


def orbit_mismatch(burst_id: int, relative_orbit: int, subswath: str) -> int:
    """Orbits between a row's ``relative_orbit_number`` and the one its burst id implies (cyclic)."""
    implied = relative_orbit_of_burst_id(burst_id, subswath)
    difference = abs(implied - relative_orbit) % RELATIVE_ORBITS
    return min(difference, RELATIVE_ORBITS - difference)
