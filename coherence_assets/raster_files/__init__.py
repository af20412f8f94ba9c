"""The stored coherence rasters, one GeoTIFF per pair: their names, their validation, which pairs have one.

Below the jobs step, which asks which pairs have a valid raster, and the download step (``rasters``)
that writes them; the cube and STAC steps read them.
"""
