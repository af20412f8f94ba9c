"""A static STAC catalogue of what the pipeline produces: one item per raster, the cube per burst."""
