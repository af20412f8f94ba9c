import datetime as dt

import pytest

from coherence_assets.windows import parse_window_key, window_key_of, window_last_day, windows_still_growing


def test_quarter_bounds():
    assert window_last_day(dt.date(2023, 7, 1)) == dt.date(2023, 9, 30)
    assert window_last_day(dt.date(2023, 10, 1)) == dt.date(2023, 12, 31)
    assert window_key_of(dt.date(2024, 2, 29)) == "2024-01-01"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("2023-07-02", "does not start a calendar quarter"),
        ("2023-13-01", "YYYY-MM-DD"),
        ("2014-07-01", "before the first"),
    ],
)
def test_bad_window_keys_say_what_is_expected(key, message):
    with pytest.raises(ValueError, match=message):
        parse_window_key(key)


def test_previous_window_grows_until_one_baseline_and_the_publication_delay_have_passed():
    assert windows_still_growing(dt.date(2023, 10, 15), 12, 3) == ["2023-07-01", "2023-10-01"]
    assert windows_still_growing(dt.date(2023, 10, 16), 12, 3) == ["2023-10-01"]
    assert windows_still_growing(dt.date(2014, 10, 2), 12, 3) == ["2014-10-01"]
