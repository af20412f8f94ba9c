"""Only single-band float GeoTIFFs with a CRS and coherence in [0, 1] pass validation."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest

from coherence_assets.raster_files.validation import InvalidRasterError, validate_coherence_raster
from coherence_assets_tests.rasters.geotiffs import ORIGIN, coherence_values, write_coherence_tif

LOCAL = fsspec.filesystem("file")


def test_valid_raster_is_summarised(tmp_path):
    values = coherence_values()
    path = write_coherence_tif(tmp_path / "a.tif", values)

    summary = validate_coherence_raster(LOCAL, path)

    assert summary.epsg == 32632
    assert "UTM zone 32N" in summary.crs_wkt
    assert summary.shape == (30, 40)
    assert (summary.transform.a, summary.transform.e) == (20.0, -20.0)
    assert (summary.transform.c, summary.transform.f) == ORIGIN
    assert summary.mean_coherence == pytest.approx(float(np.nanmean(values)), rel=1e-6)
    assert summary.valid_fraction == pytest.approx(29 / 30)


def test_declared_nodata_value_counts_as_no_data_not_as_coherence(tmp_path):
    values = coherence_values()
    values[np.isnan(values)] = -9999.0
    path = write_coherence_tif(tmp_path / "a.tif", values, nodata=-9999.0)

    summary = validate_coherence_raster(LOCAL, path)

    assert summary.valid_fraction == pytest.approx(29 / 30)
    assert 0.0 <= summary.mean_coherence <= 1.0


def test_all_nan_raster_is_valid_with_nan_mean(tmp_path):
    path = write_coherence_tif(tmp_path / "a.tif", np.full((4, 4), np.nan, dtype=np.float32))

    summary = validate_coherence_raster(LOCAL, path)

    assert np.isnan(summary.mean_coherence)
    assert summary.valid_fraction == 0.0


def test_raster_on_an_fsspec_filesystem_is_read_through_it(tmp_path):
    memory = fsspec.filesystem("memory")
    memory.put(write_coherence_tif(tmp_path / "a.tif"), "/validation/a.tif")

    assert validate_coherence_raster(memory, "/validation/a.tif").shape == (30, 40)


def test_corrupt_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "20230701_20230713.tif"
    path.write_bytes(b"<html>502 Bad Gateway</html>")

    with pytest.raises(InvalidRasterError, match=r"20230701_20230713\.tif is corrupt or not a GeoTIFF"):
        validate_coherence_raster(LOCAL, str(path))


def test_truncated_geotiff_is_refused(tmp_path):
    path = tmp_path / "a.tif"
    write_coherence_tif(path)
    path.write_bytes(path.read_bytes()[:1000])

    with pytest.raises(InvalidRasterError, match=r"a\.tif"):
        validate_coherence_raster(LOCAL, str(path))


def test_several_bands_are_refused(tmp_path):
    path = write_coherence_tif(tmp_path / "a.tif", np.stack([coherence_values(), coherence_values()]))

    with pytest.raises(InvalidRasterError, match="has 2 bands, expected exactly one"):
        validate_coherence_raster(LOCAL, path)


def test_integer_raster_is_refused(tmp_path):
    path = write_coherence_tif(tmp_path / "a.tif", np.full((4, 4), 128, dtype=np.uint8), nodata=0)

    with pytest.raises(InvalidRasterError, match="has uint8 pixels, expected float32"):
        validate_coherence_raster(LOCAL, path)


def test_missing_crs_is_refused(tmp_path):
    path = write_coherence_tif(tmp_path / "a.tif", crs=None)

    with pytest.raises(InvalidRasterError, match="has no CRS"):
        validate_coherence_raster(LOCAL, path)


def test_values_outside_zero_one_are_refused(tmp_path):
    values = coherence_values()
    values[5, 5] = 1.5
    path = write_coherence_tif(tmp_path / "a.tif", values)

    with pytest.raises(InvalidRasterError, match=r"values from .* to 1\.5; expected values within"):
        validate_coherence_raster(LOCAL, path)


def test_missing_file_is_reported_as_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.tif does not exist"):
        validate_coherence_raster(LOCAL, str(tmp_path / "missing.tif"))


def test_zero_filled_no_data_without_a_nodata_tag_counts_as_no_data(tmp_path):
    values = coherence_values()
    values[np.isnan(values)] = 0.0
    path = write_coherence_tif(tmp_path / "a.tif", values, nodata=None)

    summary = validate_coherence_raster(LOCAL, path)

    assert summary.valid_fraction == pytest.approx(29 / 30)
    assert summary.mean_coherence == pytest.approx(float(values[1:].mean()), rel=1e-6)
