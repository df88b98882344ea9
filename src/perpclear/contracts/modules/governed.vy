# pragma version ~=0.4.3
"""
@title perpclear governed contract: the target side of the timelock
@license MIT
@notice A contract whose owner calls are delayed holds the address of the
        deployment's timelock (Timelock.vy) and asks it, in each delayed
        call, to consume that exact call: `_check(keccak256(slice(msg.data,
        0, N)))` after the owner check, N the call's fixed ABI length. The
        queue, the delay and the grace period live in the timelock.
"""

interface ITimelock:
    def consume(id: bytes32): nonpayable


timelock: public(immutable(address))


@deploy
def __init__(_timelock: address):
    assert _timelock != empty(address), "timelock: zero address"
    timelock = _timelock


@internal
def _check(id: bytes32):
    """
    @dev Reverts unless the timelock lets this call through now.
    """
    extcall ITimelock(timelock).consume(id)
