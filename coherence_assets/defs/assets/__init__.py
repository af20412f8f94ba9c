"""The assets of the chain, one module per asset."""
