"""Seasonal coherence decay: medians per temporal baseline and the exponential decay model per pixel."""
