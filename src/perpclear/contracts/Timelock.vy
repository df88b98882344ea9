# pragma version ~=0.4.3
"""
@title perpclear governance timelock
@license MIT
@notice One timelock for every contract of a deployment (the clearing house,
        the oracle, the insurance vault and the keeper contract): owner calls
        that rewire a contract or change its risk parameters take effect only
        `delay(target)` seconds after the target's owner announced them, so
        that everyone affected can see them coming and act (close, exit,
        cancel orders).
        The owner of `target` queues the exact calldata of the call
        (`queue(target, data)`, event `CallQueued` with the calldata), waits,
        then sends that call to `target`, which asks this contract to
        `consume` it: it must come within `GRACE_PERIOD` after it became
        executable, once. `cancel(target, id)` drops a queued call.
        A target's delay starts at 0 (local devnets, tests and the deployment
        itself wire everything at once) and is set at deployment on shared
        networks. Raising it takes effect at once; lowering it goes through
        the timelock at the current delay. Emergency actions (revoking a
        keeper, the reduce-only kill switch) never ask this contract.
        It holds no money and has no owner: each target's owner governs that
        target's queue and delay, and a target can only consume its own
        queued calls. (One contract rather than a copy in each target: the
        clearing house needs the room under EIP-170.)
"""

interface Owned:
    def owner() -> address: view


MAX_DELAY: constant(uint256) = 30 * 86_400
GRACE_PERIOD: constant(uint256) = 14 * 86_400
# Largest calldata a queued call may carry (a market's parameters: 356 bytes).
MAX_CALLDATA: constant(uint256) = 1_024

# Per target: its delay, and keccak256(calldata) -> the earliest time it may
# execute (0: not queued).
delay: public(HashMap[address, uint256])
queued: public(HashMap[address, HashMap[bytes32, uint256]])


event CallQueued:
    target: indexed(address)
    id: indexed(bytes32)
    eta: uint256
    data: Bytes[MAX_CALLDATA]


event CallCancelled:
    target: indexed(address)
    id: indexed(bytes32)


event CallExecuted:
    target: indexed(address)
    id: indexed(bytes32)


event DelaySet:
    target: indexed(address)
    delay: uint256


@external
def queue(target: address, data: Bytes[MAX_CALLDATA]) -> bytes32:
    """
    @notice Announces an owner call to `target`; it may execute from now +
            `delay(target)`. The target's owner only.
    @param data The exact calldata of the call (selector and arguments).
    @return Its id, keccak256(data).
    """
    self._check_owner(target)
    assert len(data) >= 4, "timelock: no call"
    id: bytes32 = keccak256(data)
    eta: uint256 = block.timestamp + self.delay[target]
    self.queued[target][id] = eta
    log CallQueued(target=target, id=id, eta=eta, data=data)
    return id


@external
def cancel(target: address, id: bytes32):
    """
    @notice Drops a queued call. The target's owner only.
    """
    self._check_owner(target)
    assert self.queued[target][id] != 0, "timelock: not queued"
    self.queued[target][id] = 0
    log CallCancelled(target=target, id=id)


@external
def set_delay(target: address, new_delay: uint256):
    """
    @notice Sets the delay of `target`: at once when raising it, through the
            timelock (this call queued for `target` at the current delay)
            when lowering it. The target's owner only.
    @param new_delay Seconds, at most 30 days.
    """
    self._check_owner(target)
    assert new_delay <= MAX_DELAY, "timelock: delay too long"
    if new_delay < self.delay[target]:
        self._consume(target, keccak256(slice(msg.data, 0, 68)))
    self.delay[target] = new_delay
    log DelaySet(target=target, delay=new_delay)


@external
def consume(id: bytes32):
    """
    @notice Called by a target for its own owner call: lets it through at
            once while the target's delay is 0 and nothing is queued, else
            only if it was queued, its time has come and has not passed by
            more than the grace period. The target checks its owner; `id` is
            keccak256 of the call's calldata (`slice(msg.data, 0, N)`, N its
            fixed ABI length), the hash `queue` stored for that exact call.
    """
    self._consume(msg.sender, id)


@internal
def _consume(target: address, id: bytes32):
    eta: uint256 = self.queued[target][id]
    if eta == 0 and self.delay[target] == 0:
        return
    assert eta != 0, "timelock: not queued"
    assert block.timestamp >= eta, "timelock: too early"
    assert block.timestamp <= eta + GRACE_PERIOD, "timelock: expired"
    self.queued[target][id] = 0
    log CallExecuted(target=target, id=id)


@internal
@view
def _check_owner(target: address):
    assert msg.sender == staticcall Owned(target).owner(), "ownership: not owner"
