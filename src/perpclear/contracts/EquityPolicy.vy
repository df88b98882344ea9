# pragma version ~=0.4.3
"""
@title perpclear loss policy EQUITY
@license MIT
@notice Every account pays the residual pro rata to its equity: the clearing
        house shrinks all equity by r = (R + 1) / D, D the sum of equity,
        settled lazily (docs/loss-policies.md, "EQUITY").
"""

from interfaces import ILossPolicy

implements: ILossPolicy


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> ILossPolicy.Placement:
    return ILossPolicy.Placement(by_side=0, by_equity=residual)
