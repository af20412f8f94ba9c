"""ESA burst ids, JPL/OPERA-style burst keys, and what a burst id says about its track.

ESA counts bursts along the whole 12-day repeat cycle, starting at the ascending node
crossing (ANX) of relative orbit 1, one burst every 2.758273 s::

    burst_id - 1 = floor((t_anx + (relative_orbit - 1) * T_orb) / 2.758273 s),  T_orb = 12 d / 175

so a burst id implies its relative orbit and where on the orbit it lies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

BURST_CYCLE_SECONDS = 2.758273
ORBIT_PERIOD_SECONDS = 12 * 86400 / 175
RELATIVE_ORBITS = 175
IW_SUBSWATHS = ("IW1", "IW2", "IW3")
EW_SUBSWATHS = ("EW1", "EW2", "EW3", "EW4", "EW5")
SUBSWATHS = IW_SUBSWATHS + EW_SUBSWATHS
MAX_BURST_ID = math.ceil(RELATIVE_ORBITS * ORBIT_PERIOD_SECONDS / BURST_CYCLE_SECONDS)

_BURST_KEY = re.compile(r"^t(\d{3})_(\d{6})_((?:iw[1-3])|(?:ew[1-5]))$")


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


def orbit_position_of_burst_id(burst_id: int) -> tuple[int, float]:
    """Relative orbit implied by ``burst_id`` and the burst's time since ANX as a fraction of an orbit."""
    if burst_id < 1:
        raise ValueError(f"burst id must be positive, got {burst_id}")
    seconds_in_cycle = (burst_id - 1 + 0.5) * BURST_CYCLE_SECONDS
    orbit_index, seconds_since_anx = divmod(seconds_in_cycle, ORBIT_PERIOD_SECONDS)
    return int(orbit_index) % RELATIVE_ORBITS + 1, seconds_since_anx / ORBIT_PERIOD_SECONDS


def relative_orbit_of_burst_id(burst_id: int) -> int:
    return orbit_position_of_burst_id(burst_id)[0]


def is_ascending_burst(burst_id: int) -> bool:
    """True where the burst lies between the southernmost point and the northernmost point of the orbit."""
    fraction = orbit_position_of_burst_id(burst_id)[1]
    return fraction < 0.25 or fraction >= 0.75


def orbit_mismatch(burst_id: int, relative_orbit: int) -> int:
    """Orbits between a row's ``relative_orbit_number`` and the one its burst id implies (cyclic)."""
    implied = relative_orbit_of_burst_id(burst_id)
    difference = abs(implied - relative_orbit) % RELATIVE_ORBITS
    return min(difference, RELATIVE_ORBITS - difference)
