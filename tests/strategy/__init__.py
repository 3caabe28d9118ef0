"""Tests of the strategy layer: the HIP-3 fee model, the oracle tracker and the dislocation detector."""
