import pytest

from coherence_assets.bursts.burst_ids import (
    BurstKey,
    is_ascending_burst,
    orbit_mismatch,
    relative_orbit_of_burst_id,
)


def test_burst_30343_lies_on_ascending_relative_orbit_15():
    assert relative_orbit_of_burst_id(30343) == 15
    assert is_ascending_burst(30343)


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
    assert orbit_mismatch(30343, 15) == 0
    assert orbit_mismatch(30343, 30) == 15
    assert orbit_mismatch(1, 175) == 1
