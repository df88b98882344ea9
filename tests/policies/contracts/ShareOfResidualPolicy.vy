# pragma version ~=0.4.3
"""
@title ShareOfResidualPolicy
@license MIT
@notice Test helper (not a project contract): answers fixed shares of the
        residual, by_side = R * side_bps / 10,000 and by_equity = R *
        equity_bps / 10,000 (their sum may exceed R), so that a property test
        can drive the clearing house's booking of any placement
        (tests/policies/test_policy_interface.py).
"""

from perpclear.contracts.interfaces import ILossPolicy

implements: ILossPolicy

side_bps: public(uint256)
equity_bps: public(uint256)


@external
def set_shares(side_bps: uint256, equity_bps: uint256):
    self.side_bps = side_bps
    self.equity_bps = equity_bps


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> ILossPolicy.Placement:
    return ILossPolicy.Placement(
        by_side=residual * self.side_bps // 10_000, by_equity=residual * self.equity_bps // 10_000
    )
