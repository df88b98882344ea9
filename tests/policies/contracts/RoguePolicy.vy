# pragma version ~=0.4.3
"""
@title RoguePolicy
@license MIT
@notice Test helper (not a project contract): a loss policy contract that
        answers badly, to show what the clearing house does with each answer
        (tests/policies/test_policy_interface.py). An address without code,
        which answers nothing, is the last bad answer; it needs no contract.
"""

from perpclear.contracts.interfaces import ILossPolicy

implements: ILossPolicy

mode: public(uint256)

OVER: constant(uint256) = 0  # places R + 1
HUGE: constant(uint256) = 1  # answers parts whose sum overflows
REVERT: constant(uint256) = 2
BURN: constant(uint256) = 3  # spends more than the gas it is given


@external
def set_mode(mode: uint256):
    self.mode = mode


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> ILossPolicy.Placement:
    mode: uint256 = self.mode
    if mode == OVER:
        return ILossPolicy.Placement(by_side=1, by_equity=residual)
    if mode == HUGE:
        return ILossPolicy.Placement(by_side=residual, by_equity=max_value(uint256))
    assert mode != REVERT, "rogue: no"
    word: bytes32 = empty(bytes32)
    for i: uint256 in range(100_000):
        word = keccak256(word)
    return ILossPolicy.Placement(by_side=0, by_equity=convert(word, uint256) % residual)
