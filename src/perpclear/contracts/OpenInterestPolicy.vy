# pragma version ~=0.4.3
"""
@title perpclear loss policy OPEN_INTEREST
@license MIT
@notice The side opposite the bankrupt position, as it stood before the
        liquidation, pays the residual per contract, at most the mark
        (docs/loss-policies.md, "OPEN_INTEREST"); with no open interest it
        stays bad debt.
"""

from interfaces import ILossPolicy

implements: ILossPolicy


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> ILossPolicy.Placement:
    return ILossPolicy.Placement(by_side=residual, by_equity=0)
