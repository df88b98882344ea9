# pragma version 0.4.3
"""
@title EquityHarness
@license MIT
@notice Test helper (not a project contract): the EQUITY module alone, one
        market, so that its fixed point can be driven through thousands of
        socializations on revm (tests/unit/equity/test_equity_scale.py).
"""

from perpclear.contracts.modules import loss_equity

initializes: loss_equity

exports: (loss_equity.scale, loss_equity.side_index, loss_equity.basis)


@deploy
def __init__():
    loss_equity.__init__()


@external
def add_basis(delta_x: int256):
    loss_equity._add_basis(delta_x)


@internal
def _socialize(residual: uint256, equity: int256, q_long: int256, q_short: int256):
    """
    @dev One socialization of `residual` over a sum of equity `equity`,
         market 0's sides at q_long / q_short.
    """
    rate: uint256 = loss_equity._rate(residual, equity)
    q_l: int256[8] = empty(int256[8])
    q_s: int256[8] = empty(int256[8])
    q_l[0] = q_long
    q_s[0] = q_short
    if rate > 0:
        loss_equity._apply_rate(rate, [0], q_l, q_s)


struct Step:
    residual: uint256
    equity: int256
    q: int256  # both sides' q (no funding)


@external
def socialize_many(steps: DynArray[Step, 500]):
    for step: Step in steps:
        self._socialize(step.residual, step.equity, step.q, step.q)


@external
@pure
def rates(steps: DynArray[Step, 500]) -> DynArray[uint256, 500]:
    """
    @notice The rate each step applies (it depends on R and D only).
    """
    out: DynArray[uint256, 500] = []
    for step: Step in steps:
        out.append(loss_equity._rate(step.residual, step.equity))
    return out


@external
@view
def settled(x_w2: int256, k_snapshot: uint256, tail_w2: int256) -> int256:
    return loss_equity._settled_collateral(x_w2, k_snapshot, tail_w2)


@external
@view
def total_equity() -> int256:
    return loss_equity._total_equity(0)
