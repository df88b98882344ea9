"""Governance timelock (Timelock.vy, one per deployment) of the clearing
house, the oracle and the vault: with a delay set for a target, each rewiring
or risk-parameter call runs only after the target's owner queued it with its
exact calldata and the delay passed, once, within the grace period; the owner
can cancel; raising the delay is immediate, lowering it waits; revoking a
keeper and the kill switch are never delayed; one target's queue and delay
are not another's. With delay 0 (local devnets, the tests) every call runs at
once."""

import ape
import pytest
from eth_utils import keccak

from perpclear.model import MarketParams

DELAY = 3_600
GRACE = 14 * 86_400


def gated_calls(system, traders):
    """(contract, method name, args, read-back) for one gated call of each kind."""
    ch, oracle, vault = system.clearing_house, system.oracle, system.vault
    params = MarketParams(imr_bps=2_000, mmr_bps=1_000, penalty_bps=500)
    return [
        (ch, "set_market_params", (0, params.as_tuple()), lambda: system.lens.market_params(0).imr_bps == 2_000),
        (ch, "set_loss_policy", (0, 2), lambda: system.lens.markets(0).loss_policy == 2),
        (ch, "set_loss_policy_contract", (3, traders[3]), lambda: ch.loss_policies(3) == traders[3].address),
        (ch, "set_fee_recipient", (traders[3],), lambda: ch.fee_recipient() == traders[3].address),
        (ch, "set_keeper", (traders[3], True), lambda: ch.is_keeper(traders[3])),
        (oracle, "set_max_move", (0, 1_000), lambda: oracle.max_move_bps(0) == 1_000),
        (oracle, "set_move_window", (0, 600), lambda: oracle.move_window(0) == 600),
        (oracle, "set_max_age", (0, 60), lambda: oracle.max_age(0) == 60),
        (oracle, "set_keeper", (traders[3], True), lambda: oracle.keepers(traders[3])),
        (system.vault, "set_cooldown", (60,), lambda: vault.cooldown() == 60),
        (system.vault, "set_claim_window", (7_200,), lambda: vault.claim_window() == 7_200),
    ]


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
@pytest.mark.parametrize("index", range(11))
def test_timelock__gated_call_runs_once_after_the_delay(system, admin, traders, chain, index):
    contract, name, args, applied = gated_calls(system, traders)[index]
    timelock = system.timelock
    assert contract.timelock() == timelock.address
    method = getattr(contract, name)
    with ape.reverts("ownership: not owner"):
        timelock.set_delay(contract, DELAY, sender=traders[0])
    tx = timelock.set_delay(contract, DELAY, sender=admin)  # raising: at once
    assert [(e.target, e.delay) for e in tx.decode_logs(timelock.DelaySet)] == [(contract.address, DELAY)]
    with ape.reverts("timelock: not queued"):
        method(*args, sender=admin)
    data = bytes(method.encode_input(*args))
    with ape.reverts("ownership: not owner"):
        timelock.queue(contract, data, sender=traders[0])
    tx = timelock.queue(contract, data, sender=admin)
    (queued,) = tx.decode_logs(timelock.CallQueued)
    assert (queued.target, bytes(queued.id), bytes(queued.data)) == (contract.address, keccak(data), data)
    assert timelock.queued(contract, keccak(data)) == queued.eta == chain.blocks[tx.block_number].timestamp + DELAY
    with ape.reverts("timelock: too early"):
        method(*args, sender=admin)
    chain.pending_timestamp = queued.eta
    with ape.reverts("ownership: not owner"):
        method(*args, sender=traders[0])  # the owner still sends it
    tx = method(*args, sender=admin)
    assert [(e.target, bytes(e.id)) for e in tx.decode_logs(timelock.CallExecuted)] == [(contract.address, keccak(data))]
    assert applied()
    with ape.reverts("timelock: not queued"):
        method(*args, sender=admin)  # once


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_timelock__expires_and_cancels(system, admin, traders, chain):
    ch, timelock = system.clearing_house, system.timelock
    timelock.set_delay(ch, DELAY, sender=admin)
    data = bytes(ch.set_loss_policy.encode_input(0, 2))
    tx = timelock.queue(ch, data, sender=admin)
    (queued,) = tx.decode_logs(timelock.CallQueued)
    chain.pending_timestamp = queued.eta + GRACE + 1
    with ape.reverts("timelock: expired"):
        ch.set_loss_policy(0, 2, sender=admin)
    tx = timelock.queue(ch, data, sender=admin)
    with ape.reverts("ownership: not owner"):
        timelock.cancel(ch, keccak(data), sender=traders[0])
    tx = timelock.cancel(ch, keccak(data), sender=admin)
    assert [(e.target, bytes(e.id)) for e in tx.decode_logs(timelock.CallCancelled)] == [(ch.address, keccak(data))]
    chain.pending_timestamp += DELAY
    with ape.reverts("timelock: not queued"):
        ch.set_loss_policy(0, 2, sender=admin)
    with ape.reverts("timelock: not queued"):
        timelock.cancel(ch, keccak(data), sender=admin)
    with ape.reverts("timelock: no call"):
        timelock.queue(ch, b"\x01", sender=admin)
    assert system.lens.markets(0).loss_policy == 1


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_timelock__lowering_the_delay_waits_raising_does_not(system, admin, chain):
    ch, timelock = system.clearing_house, system.timelock
    timelock.set_delay(ch, DELAY, sender=admin)
    with ape.reverts("timelock: delay too long"):
        timelock.set_delay(ch, 30 * 86_400 + 1, sender=admin)
    with ape.reverts("timelock: not queued"):
        timelock.set_delay(ch, 0, sender=admin)
    data = bytes(timelock.set_delay.encode_input(ch, 0))
    (queued,) = timelock.queue(ch, data, sender=admin).decode_logs(timelock.CallQueued)
    chain.pending_timestamp = queued.eta
    timelock.set_delay(ch, 0, sender=admin)
    assert timelock.delay(ch) == 0
    ch.set_loss_policy(0, 2, sender=admin)  # no delay: at once
    assert system.lens.markets(0).loss_policy == 2


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_timelock__one_target_cannot_use_another_targets_queue(system, admin, traders, chain):
    """A call queued for the oracle does not let the same calldata through on
    the clearing house, nor can any contract consume a call queued for
    another: `consume` only reads the caller's own queue."""
    ch, oracle, timelock = system.clearing_house, system.oracle, system.timelock
    for contract in (ch, oracle):
        timelock.set_delay(contract, DELAY, sender=admin)
    data = bytes(ch.set_keeper.encode_input(traders[3], True))
    (queued,) = timelock.queue(oracle, data, sender=admin).decode_logs(timelock.CallQueued)
    chain.pending_timestamp = queued.eta
    with ape.reverts("timelock: not queued"):
        ch.set_keeper(traders[3], True, sender=admin)
    timelock.consume(keccak(data), sender=traders[0])  # an outsider's own (empty) queue: nothing happens
    assert timelock.queued(oracle, keccak(data)) == queued.eta
    oracle.set_keeper(traders[3], True, sender=admin)  # the oracle's own call goes through
    assert oracle.keepers(traders[3]) and timelock.queued(oracle, keccak(data)) == 0


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_timelock__emergency_actions_are_never_delayed(system, admin, traders):
    ch, oracle = system.clearing_house, system.oracle
    for contract in (ch, oracle):
        system.timelock.set_delay(contract, DELAY, sender=admin)
    ch.set_keeper(system.keeper, False, sender=admin)  # revoking: at once
    assert not ch.is_keeper(system.keeper)
    oracle.set_keeper(system.keeper, False, sender=admin)
    assert not oracle.keepers(system.keeper)
    ch.set_reduce_only(0, True, sender=admin)  # the kill switch
    assert system.lens.markets(0).reduce_only
