"""Tests of the risk gates."""
