"""Coherence rasters: matching job result assets to pairs, downloading and validating them."""
