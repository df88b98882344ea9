# pragma version ~=0.4.3
"""
@title SideThenEquityPolicy
@license MIT
@notice Test helper and the worked example of docs/loss-policies.md ("Adding a
        policy"), not a shipped policy: a fifth loss policy added without a
        change to the clearing house. The side opposite the bankrupt position
        pays the residual up to `cap_bps` of the mark per contract of its open
        interest; every account's equity pays the rest. (After ADL fills the
        clearing house passes no mark: equity pays it all.)
"""

from perpclear.contracts.interfaces import ILossPolicy

implements: ILossPolicy

BPS: constant(uint256) = 10_000
WAD: constant(uint256) = 10**18

cap_bps: public(immutable(uint256))


@deploy
def __init__(_cap_bps: uint256):
    assert _cap_bps <= BPS, "policy: cap above the mark"
    cap_bps = _cap_bps


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> ILossPolicy.Placement:
    side: uint256 = min(residual, open_interest * mark // WAD * cap_bps // BPS)
    return ILossPolicy.Placement(by_side=side, by_equity=residual - side)
