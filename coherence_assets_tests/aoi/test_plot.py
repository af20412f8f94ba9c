"""The AOI plot: a readable PNG with one panel per AOI, bounded for many AOIs."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from coherence_assets.aoi.plot import MAX_PANELS, render_aoi_series_png
from coherence_assets.aoi.statistics import SERIES_COLUMNS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def series_table(aoi_count: int) -> pd.DataFrame:
    """Pairs 12 days apart with a two-month gap, for ``aoi_count`` AOIs."""
    references = pd.to_datetime(["2023-07-03", "2023-07-15", "2023-07-27", "2023-09-25", "2023-10-07"])
    rows = []
    for index in range(aoi_count):
        for reference in references:
            mean = 0.3 + 0.05 * index
            rows.append(
                [f"aoi_{index:02d}", "t015_030343_iw2", reference, reference + pd.Timedelta(days=12), 12,
                 mean, mean, mean - 0.1, mean + 0.1, 0.9, 400]
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(SERIES_COLUMNS))


def image_height(png: bytes) -> int:
    assert png.startswith(PNG_SIGNATURE)
    return matplotlib.image.imread(io.BytesIO(png), format="png").shape[0]


def test_one_panel_per_aoi_and_no_more_than_max_panels():
    one_row, two_rows = (
        image_height(render_aoi_series_png(series_table(3), "b")),
        image_height(render_aoi_series_png(series_table(4), "b")),
    )
    bounded = image_height(render_aoi_series_png(series_table(MAX_PANELS + 5), "b"))

    assert one_row > 150
    assert two_rows > one_row * 1.5
    assert bounded == image_height(render_aoi_series_png(series_table(MAX_PANELS), "b"))


def test_a_table_without_aois_is_refused_with_the_burst_named():
    with pytest.raises(ValueError, match="AOI series of t015_030343_iw2 has no rows"):
        render_aoi_series_png(series_table(0).astype({"mean": np.float64}), "t015_030343_iw2")
