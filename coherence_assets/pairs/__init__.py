"""Forming InSAR pairs from a burst's acquisitions."""
