from datetime import date

import pytest

from coherence_assets.decay.seasons import season_of, season_start


@pytest.mark.parametrize(
    ("day", "season"),
    [
        (date(2023, 7, 14), "2023-JJA"),
        (date(2023, 6, 1), "2023-JJA"),
        (date(2023, 8, 31), "2023-JJA"),
        (date(2023, 9, 1), "2023-SON"),
        (date(2023, 12, 15), "2024-DJF"),  # December opens the next year's winter
        (date(2024, 2, 29), "2024-DJF"),
        (date(2024, 3, 1), "2024-MAM"),
    ],
)
def test_a_pair_belongs_to_the_meteorological_season_of_its_reference_date(day, season):
    assert season_of(day) == season
    assert season_of(season_start(season)) == season
