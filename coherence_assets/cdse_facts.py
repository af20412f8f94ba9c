"""Facts about CDSE that the product and its stand-in (``embedded_openeo``) both read, in one home.

A base module: it imports nothing of the product, so the stand-in can read it and still change
apart from the product (``test_layers.py`` holds both to that). What lives here is CDSE's and
ESA's, not the product's choice: burst-id rules, the coherence processes' ids and where the APEx
one is published, the baseline step, CDSE's job limits, and where the stand-in answers.

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
from collections.abc import Iterable
from dataclasses import dataclass

# --- burst ids -------------------------------------------------------------------------------------
ORBIT_PERIOD_SECONDS = 12 * 86400 / 175
RELATIVE_ORBITS = 175
IW_SUBSWATHS = ("IW1", "IW2", "IW3")
EW_SUBSWATHS = ("EW1", "EW2", "EW3", "EW4", "EW5")
SUBSWATHS = IW_SUBSWATHS + EW_SUBSWATHS


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


def opera_burst_key(relative_orbit: int, burst_id: int, subswath: str) -> str:
    """The JPL/OPERA burst key (``t015_030343_iw2``): the product's partition names, the stand-in's seeds."""
    return f"t{relative_orbit:03d}_{burst_id:06d}_{subswath.lower()}"


def is_ascending_burst(burst_id: int, subswath: str) -> bool:
    """True where the burst lies between the southernmost point and the northernmost point of the orbit."""
    fraction = orbit_position_of_burst_id(burst_id, subswath)[1]
    return fraction < 0.25 or fraction >= 0.75


# --- the coherence processes -----------------------------------------------------------------------
SENTINEL1_SAR_COHERENCE = "sentinel1_sar_coherence"
SAR_COHERENCE = "sar_coherence"
SAR_COHERENCE_PARALLEL = "sar_coherence_parallel"
APEX_REPOSITORY = "ESA-APEx/apex_algorithms"
APEX_BRANCH = "main"
APEX_UDP_PATH = "algorithm_catalog/eurac/sentinel1_sar_coherence/openeo_udp/sentinel1_sar_coherence.json"
# The UDP on the main branch, as CDSE and APEx publish it; the product submits jobs at a commit instead.
APEX_NAMESPACE = (
    f"https://raw.githubusercontent.com/{APEX_REPOSITORY}/refs/heads/{APEX_BRANCH}/{APEX_UDP_PATH}"
)
_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
# Sentinel-1 revisits a burst every 6 days (two satellites) or 12 (one), so pairs exist only at
# multiples of 6 days; the UDP's temporal_baseline "should be a multiple of 6".
BASELINE_STEP_DAYS = 6
# The coherence rasters' spacing on CDSE (SNAP's terrain correction to 20 m), in metres.
CDSE_PIXEL_SIZE = 20.0


def is_commit_sha(text: str) -> bool:
    """A full commit sha as git and GitHub write it: 40 lower-case hex digits."""
    return bool(_COMMIT_SHA.match(text))


def check_temporal_baselines(baselines_days: Iterable[int]) -> None:
    """Refuse baselines that no Sentinel-1 pair can have, in one line naming them and what is allowed."""
    baselines = list(baselines_days)
    if not baselines:
        raise ValueError(
            f"no temporal baseline is configured; give at least one multiple of {BASELINE_STEP_DAYS} days"
        )
    wrong = [days for days in baselines if days < 1 or days % BASELINE_STEP_DAYS]
    if wrong:
        raise ValueError(
            f"temporal baseline(s) {', '.join(map(str, wrong))} day(s) are not positive multiples of "
            f"{BASELINE_STEP_DAYS}: Sentinel-1 revisits a burst every 6 or 12 days and CDSE's "
            f"{SENTINEL1_SAR_COHERENCE} takes multiples of 6 only; use e.g. 6, 12, 24"
        )


# --- CDSE's openEO limits ----------------------------------------------------------------------------
# two jobs running per user, job starts at least 5 s apart (faster ones get HTTP 429)
CDSE_MAX_RUNNING_JOBS = 2
CDSE_MIN_SECONDS_BETWEEN_STARTS = 5.0

# --- the stand-in: where it answers and its login ------------------------------------------------------
LOCAL_BACKEND_HOST = "127.0.0.1"
LOCAL_BACKEND_PORT = 8712
LOCAL_BACKEND_DATA_DIR = ".coherence-backend"
# where the stand-in answers the one GitHub REST route the product asks (which commit main is at)
LOCAL_GITHUB_API_PATH = "/github"
# the stand-in's documented basic-auth login: a default, not a secret
LOCAL_USERNAME = "local"
LOCAL_PASSWORD = "local"
