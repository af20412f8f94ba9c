"""Burst keys, and the relative orbit a burst id implies, checked against published burst ids.

The published rows are independent of this code and of the embedded backend (which uses the same
rule to place its synthetic acquisitions):

- ASF's burst-id tests, ``ASFHyP3/burst2safe`` ``tests/test_burst_id.py`` (from
  ``asfadmin/rain`` ``tests/test_util_burst.py``): IW2 burst 32322 on relative orbit 16, an
  equator crosser whose ``azimuthAnxTime`` is 6208.266 s after the previous orbit's ANX, and EW5
  burst 308684 on relative orbit 159, 1816.084 s after ANX.
- CDSE's burst extractor examples, ``eu-cdse/utilities`` ``sentinel1_burst_extractor.sh``:
  IW3 burst 301345 in ``S1A_IW_SLC__1SDH_20240201T085352_..._052363_...`` and IW3 burst 202680
  in ``S1A_IW_SLC__1SDV_20141012T051707_..._002792_...``; S1A's relative orbit is
  ``(absolute orbit - 73) mod 175 + 1`` (ESA), so orbits 141 and 95.
- CDSE's ``Bursts`` documentation: S1A burst 15805 IW1 from absolute orbit 55030 (relative
  orbit 8), descending.
"""

import pytest

from coherence_assets.bursts.burst_ids import BurstKey, orbit_mismatch
from coherence_assets.cdse_facts import (
    BURST_TIMING,
    ORBIT_PERIOD_SECONDS,
    is_ascending_burst,
    orbit_position_of_burst_id,
    relative_orbit_of_burst_id,
)


def s1a_relative_orbit(absolute_orbit: int) -> int:
    return (absolute_orbit - 73) % 175 + 1


PUBLISHED_ORBITS = [
    (32322, "IW2", 16),
    (308684, "EW5", 159),
    (301345, "IW3", s1a_relative_orbit(52363)),
    (202680, "IW3", s1a_relative_orbit(2792)),
    (15805, "IW1", s1a_relative_orbit(55030)),
]


@pytest.mark.parametrize(("burst_id", "subswath", "relative_orbit"), PUBLISHED_ORBITS)
def test_a_published_burst_id_implies_its_published_relative_orbit(burst_id, subswath, relative_orbit):
    assert relative_orbit_of_burst_id(burst_id, subswath) == relative_orbit
    assert orbit_mismatch(burst_id, relative_orbit, subswath) == 0


@pytest.mark.parametrize(
    ("burst_id", "subswath", "azimuth_anx_seconds"),
    [(32322, "IW2", 6208.265985771300), (308684, "EW5", 1816.083970564404)],
)
def test_the_burst_lies_within_one_burst_cycle_of_its_published_time_after_anx(
    burst_id, subswath, azimuth_anx_seconds
):
    fraction = orbit_position_of_burst_id(burst_id, subswath)[1]
    published = azimuth_anx_seconds % ORBIT_PERIOD_SECONDS  # the equator crosser counts from the ANX before
    assert abs(fraction * ORBIT_PERIOD_SECONDS - published) < BURST_TIMING[subswath[:2]].cycle_seconds


def test_ew_bursts_count_in_the_ew_burst_cycle_not_the_iw_one():
    """With the IW cycle, EW5 burst 308684 would land on orbit 144, 15 orbits from where ASF puts it."""
    assert relative_orbit_of_burst_id(308684, "EW5") == 159
    assert relative_orbit_of_burst_id(308684, "IW2") == 144


def test_published_passes_ascending_for_south_tyrol_and_descending_for_cdses_example():
    assert is_ascending_burst(30343, "IW2")  # packaged map: ascending orbit 15 over the Alps in the evening
    assert not is_ascending_burst(15805, "IW1")


def test_burst_ids_beyond_their_modes_cycle_are_refused_naming_the_last_id():
    last_ew = BURST_TIMING["EW"].max_burst_id
    # the last burst's cycle starts before the 12-day cycle ends; its middle may fall in the next one
    assert relative_orbit_of_burst_id(last_ew, "EW1") in (175, 1)
    with pytest.raises(ValueError, match=f"EW burst ids run from 1 to {last_ew}, got {last_ew + 1}"):
        relative_orbit_of_burst_id(last_ew + 1, "EW1")
    assert BURST_TIMING["IW"].max_burst_id > last_ew  # the IW cycle is shorter: more bursts per 12 days


def test_burst_key_round_trips_in_jpl_form():
    key = BurstKey(15, 30343, "IW2")
    assert str(key) == "t015_030343_iw2"
    assert BurstKey.parse("t015_030343_iw2") == key


@pytest.mark.parametrize(
    "bad", ["t15_030343_iw2", "t015_030343_iw4", "T015_030343_IW2", "015_030343_iw2", ""]
)
def test_malformed_burst_keys_are_refused_with_the_expected_form(bad):
    with pytest.raises(ValueError, match="t015_030343_iw2"):
        BurstKey.parse(bad)


def test_orbit_mismatch_is_cyclic_and_zero_for_the_implied_orbit():
    assert orbit_mismatch(30343, 15, "IW2") == 0
    assert orbit_mismatch(30343, 30, "IW2") == 15
    assert orbit_mismatch(1, 175, "IW1") == 1
