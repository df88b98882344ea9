# pragma version ~=0.4.3
"""
@title LongAnswerPolicy
@license MIT
@notice Test helper (not a project contract): answers three words, the
        placement (0, R) and one word more, to show that the clearing house
        reads the first two (tests/policies/test_policy_interface.py).
"""


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> (uint256, uint256, uint256):
    return 0, residual, max_value(uint256)
