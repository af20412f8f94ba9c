"""Where the stand-in acquires IW bursts: over land and coastal seas, never the open ocean, as Sentinel-1 does.

Sentinel-1's observation scenario images land, coastal zones and sea ice in IW mode and the open
ocean in WV mode, so CDSE's ``Bursts`` catalogue holds no IW burst far out at sea. The mask is the
GLOBE 1 km land mask (NOAA, public domain, as packaged by the PyPI package ``global-land-mask``
1.0.0) reduced to 0.1-degree cells that hold any land: 50 kB instead of 2.5 MB, and a cell of
coast counts as land, so coastal bursts keep their acquisitions.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import numpy as np
import shapely

LAND_MASK_FILE = Path(__file__).with_name("data") / "land_0p1deg.npz"
CELL_DEGREES = 0.1
_ROWS, _COLUMNS = 1800, 3600  # from 90°N southwards, from 180°W eastwards


@cache
def land_cells() -> np.ndarray:
    """The (1800, 3600) boolean grid: True where a 0.1-degree cell holds any land."""
    with np.load(LAND_MASK_FILE) as stored:
        return np.unpackbits(stored["land"], axis=1)[:, :_COLUMNS].astype(bool)


def touches_land(footprint: shapely.Geometry) -> bool:
    """True if any 0.1-degree cell under the footprint's bounding box (part by part) holds land."""
    cells = land_cells()
    for part in shapely.get_parts(footprint):
        west, south, east, north = part.bounds
        first_row = int(np.clip(np.floor((90.0 - north) / CELL_DEGREES), 0, _ROWS - 1))
        last_row = int(np.clip(np.floor((90.0 - south) / CELL_DEGREES), 0, _ROWS - 1))
        first_column = int(np.clip(np.floor((west + 180.0) / CELL_DEGREES), 0, _COLUMNS - 1))
        last_column = int(np.clip(np.floor((east + 180.0) / CELL_DEGREES), 0, _COLUMNS - 1))
        if cells[first_row : last_row + 1, first_column : last_column + 1].any():
            return True
    return False


def reduce_globe_mask(globe_npz: str | Path, target: str | Path = LAND_MASK_FILE) -> None:
    """Rebuild the packaged mask from global-land-mask's ``globe_combined_mask_compressed.npz`` (True = ocean)."""
    with np.load(globe_npz) as globe:
        ocean = globe["mask"]  # (21600, 43200) at 1/120 degree, from 90°N and 180°W
    factor = ocean.shape[0] // _ROWS
    land = (~ocean).reshape(_ROWS, factor, _COLUMNS, factor).any(axis=(1, 3))
    np.savez_compressed(target, land=np.packbits(land, axis=1))


if __name__ == "__main__":  # python -m embedded_openeo.land_mask PATH/TO/globe_combined_mask_compressed.npz
    reduce_globe_mask(sys.argv[1])
