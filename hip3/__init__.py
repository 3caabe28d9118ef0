"""hip3: trades Hyperliquid HIP-3 markets when the book lags the oracle."""

__version__ = "0.1.0"
