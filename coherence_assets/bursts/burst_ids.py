"""JPL/OPERA-style burst keys, the ``burst`` partition's names, and a burst map row's orbit check.

ESA's rules for what a burst id says about its track are CDSE facts (``coherence_assets.cdse_facts``),
which the embedded backend reads too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coherence_assets.cdse_facts import RELATIVE_ORBITS, opera_burst_key, relative_orbit_of_burst_id

_BURST_KEY = re.compile(r"^t(\d{3})_(\d{6})_((?:iw[1-3])|(?:ew[1-5]))$")


@dataclass(frozen=True, order=True)
class BurstKey:
    """One burst of one subswath, as the ``burst`` partition names it (``t015_030343_iw2``)."""

    relative_orbit: int
    burst_id: int
    subswath: str

    def __str__(self) -> str:
        return opera_burst_key(self.relative_orbit, self.burst_id, self.subswath)

    @classmethod
    def parse(cls, key: str) -> BurstKey:
        match = _BURST_KEY.match(key)
        if match is None:
            raise ValueError(
                f"burst key {key!r} is not of the form t<orbit:3 digits>_<burst id:6 digits>_<subswath>, "
                "e.g. 't015_030343_iw2'"
            )
        return cls(int(match.group(1)), int(match.group(2)), match.group(3).upper())


def orbit_mismatch(burst_id: int, relative_orbit: int, subswath: str) -> int:
    """Orbits between a row's ``relative_orbit_number`` and the one its burst id implies (cyclic)."""
    implied = relative_orbit_of_burst_id(burst_id, subswath)
    difference = abs(implied - relative_orbit) % RELATIVE_ORBITS
    return min(difference, RELATIVE_ORBITS - difference)
