"""The HIP-3 taker fee a market charges, in bps (protocol reference §9).

For a user whose base taker rate is x bps and a builder dex whose deployer fee scale is s:

- s ≤ 1: the protocol takes x and the deployer s·x, so the taker pays x·(1 + s);
- s > 1: the protocol takes x·s and the deployer x·s, so the taker pays 2·x·s;
- growth mode cuts both shares by 90 %, so the taker pays a tenth of the above;
- the first (validator-operated) dex charges x alone.

The deployer scale is not in meta, so the detector cannot compute the rate from first principles. It takes
an *effective* fee per market instead (config `detector.taker_fee_bps`, the deployer share included, e.g.
4 = base 2 at scale 1; overridable per market) and applies only the growth-mode cut, which meta does
report: `effective_taker_fee_bps(configured, growth_mode=...)` = configured × (0.1 if growth mode else 1).
"""

from __future__ import annotations

import math

GROWTH_MODE_FACTOR = 0.1  # growth mode cuts protocol and deployer fees by 90 %
MAX_DEPLOYER_SCALE = 10.0  # 0–3 normally, 0–10 in growth mode


def taker_fee_bps(base_bps: float, *, builder_dex: bool, deployer_scale: float, growth_mode: bool) -> float:
    """The all-in taker fee in bps for a user with base taker rate `base_bps` on one market."""
    _check_non_negative(base_bps, "base_bps")
    if not builder_dex:
        return base_bps
    _check_non_negative(deployer_scale, "deployer_scale")
    if deployer_scale > MAX_DEPLOYER_SCALE:
        raise ValueError(f"deployer_scale must be ≤ {MAX_DEPLOYER_SCALE}, got {deployer_scale}")
    if deployer_scale <= 1:
        protocol_bps, deployer_bps = base_bps, base_bps * deployer_scale
    else:
        protocol_bps = deployer_bps = base_bps * deployer_scale
    return _growth_cut(protocol_bps + deployer_bps, growth_mode)


def effective_taker_fee_bps(configured_bps: float, *, growth_mode: bool) -> float:
    """A configured effective fee (deployer share in, growth mode not applied), cut if growth mode is on."""
    _check_non_negative(configured_bps, "configured_bps")
    return _growth_cut(configured_bps, growth_mode)


def _growth_cut(fee_bps: float, growth_mode: bool) -> float:
    return fee_bps * GROWTH_MODE_FACTOR if growth_mode else fee_bps


def _check_non_negative(value: float, what: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number ≥ 0, got {value}")
