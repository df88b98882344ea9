# pragma version ~=0.4.3
"""
@title perpclear governance timelock
@license MIT
@notice Owner calls that rewire a contract or change its risk parameters
        take effect only `delay` seconds after the owner announced them, so
        that everyone affected can see them coming and act (close, exit,
        cancel orders). The owner queues the exact calldata of the call
        (`queue(data)`, event `CallQueued` with the calldata), waits, then
        sends that call; it must be sent within `GRACE_PERIOD` after it
        became executable, once. `cancel(id)` drops a queued call.
        The delay starts at 0 (local devnets, tests and the deployment
        itself wire everything at once) and is set at deployment on shared
        networks. Raising it takes effect at once; lowering it goes through
        the timelock at the current delay. Emergency actions (revoking a
        keeper, the reduce-only kill switch) are never delayed.
"""

from . import ownership

uses: ownership

MAX_DELAY: constant(uint256) = 30 * 86_400
GRACE_PERIOD: constant(uint256) = 14 * 86_400
# Largest calldata a queued call may carry (a market's parameters: 356 bytes).
MAX_CALLDATA: constant(uint256) = 1_024

delay: public(uint256)
# keccak256(calldata) -> the earliest time it may execute (0: not queued).
queued: public(HashMap[bytes32, uint256])


event CallQueued:
    id: indexed(bytes32)
    eta: uint256
    data: Bytes[MAX_CALLDATA]


event CallCancelled:
    id: indexed(bytes32)


event CallExecuted:
    id: indexed(bytes32)


event TimelockDelaySet:
    delay: uint256


@external
def queue(data: Bytes[MAX_CALLDATA]) -> bytes32:
    """
    @notice Announces an owner call; it may execute from now + `delay`.
    @param data The exact calldata of the call (selector and arguments).
    @return Its id, keccak256(data).
    """
    ownership._check_owner()
    assert len(data) >= 4, "timelock: no call"
    id: bytes32 = keccak256(data)
    eta: uint256 = block.timestamp + self.delay
    self.queued[id] = eta
    log CallQueued(id=id, eta=eta, data=data)
    return id


@external
def cancel(id: bytes32):
    """
    @notice Drops a queued call.
    """
    ownership._check_owner()
    assert self.queued[id] != 0, "timelock: not queued"
    self.queued[id] = 0
    log CallCancelled(id=id)


@external
def set_timelock_delay(new_delay: uint256):
    """
    @notice Sets the delay: at once when raising it, through the timelock
            (queued at the current delay) when lowering it. Owner only.
    @param new_delay Seconds, at most 30 days.
    """
    ownership._check_owner()
    assert new_delay <= MAX_DELAY, "timelock: delay too long"
    if new_delay < self.delay:
        self._check(keccak256(slice(msg.data, 0, 36)))
    self.delay = new_delay
    log TimelockDelaySet(delay=new_delay)


@internal
def _check(id: bytes32):
    """
    @dev Lets a delayed owner call through: at once while the delay is 0,
         else only if it was queued, its time has come and not passed by
         more than the grace period. The caller checks the owner. `id` is
         keccak256 of the call's calldata, `slice(msg.data, 0, N)` with N its
         fixed ABI length: the hash `queue` stored for that exact call.
    """
    if self.delay == 0 and self.queued[id] == 0:
        return
    eta: uint256 = self.queued[id]
    assert eta != 0, "timelock: not queued"
    assert block.timestamp >= eta, "timelock: too early"
    assert block.timestamp <= eta + GRACE_PERIOD, "timelock: expired"
    self.queued[id] = 0
    log CallExecuted(id=id)
