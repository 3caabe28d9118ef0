"""Hyperliquid wire protocol: action builders, signing, message shapes. Nothing here does I/O."""
