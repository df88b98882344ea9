"""Governance timelock (modules/timelock.vy) on the clearing house, the
oracle and the vault: with a delay set, each rewiring or risk-parameter call
runs only after it was queued with its exact calldata and the delay passed,
once, within the grace period; the owner can cancel; raising the delay is
immediate, lowering it waits; revoking a keeper and the kill switch are never
delayed. With delay 0 (local devnets, the tests) every call runs at once."""

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
        (ch, "set_market_params", (0, params.as_tuple()), lambda: ch.market_params(0).imr_bps == 2_000),
        (ch, "set_loss_policy", (0, 2), lambda: ch.markets(0).loss_policy == 2),
        (ch, "set_deleverager", (traders[3],), lambda: ch.deleverager() == traders[3].address),
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
    method = getattr(contract, name)
    tx = contract.set_timelock_delay(DELAY, sender=admin)  # raising: at once
    assert [e.delay for e in tx.decode_logs(contract.TimelockDelaySet)] == [DELAY]
    with ape.reverts("timelock: not queued"):
        method(*args, sender=admin)
    data = bytes(method.encode_input(*args))
    with ape.reverts("ownership: not owner"):
        contract.queue(data, sender=traders[0])
    tx = contract.queue(data, sender=admin)
    (queued,) = tx.decode_logs(contract.CallQueued)
    assert (bytes(queued.id), bytes(queued.data)) == (keccak(data), data)
    assert contract.queued(keccak(data)) == queued.eta == chain.blocks[tx.block_number].timestamp + DELAY
    with ape.reverts("timelock: too early"):
        method(*args, sender=admin)
    chain.pending_timestamp = queued.eta
    with ape.reverts("ownership: not owner"):
        method(*args, sender=traders[0])  # the owner still sends it
    tx = method(*args, sender=admin)
    assert [bytes(e.id) for e in tx.decode_logs(contract.CallExecuted)] == [keccak(data)]
    assert applied()
    with ape.reverts("timelock: not queued"):
        method(*args, sender=admin)  # once


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_timelock__expires_and_cancels(system, admin, traders, chain):
    ch = system.clearing_house
    ch.set_timelock_delay(DELAY, sender=admin)
    data = bytes(ch.set_loss_policy.encode_input(0, 2))
    tx = ch.queue(data, sender=admin)
    (queued,) = tx.decode_logs(ch.CallQueued)
    chain.pending_timestamp = queued.eta + GRACE + 1
    with ape.reverts("timelock: expired"):
        ch.set_loss_policy(0, 2, sender=admin)
    tx = ch.queue(data, sender=admin)
    with ape.reverts("ownership: not owner"):
        ch.cancel(keccak(data), sender=traders[0])
    tx = ch.cancel(keccak(data), sender=admin)
    assert [bytes(e.id) for e in tx.decode_logs(ch.CallCancelled)] == [keccak(data)]
    chain.pending_timestamp += DELAY
    with ape.reverts("timelock: not queued"):
        ch.set_loss_policy(0, 2, sender=admin)
    with ape.reverts("timelock: not queued"):
        ch.cancel(keccak(data), sender=admin)
    with ape.reverts("timelock: no call"):
        ch.queue(b"\x01", sender=admin)
    assert ch.markets(0).loss_policy == 1


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_timelock__lowering_the_delay_waits_raising_does_not(system, admin, chain):
    ch = system.clearing_house
    ch.set_timelock_delay(DELAY, sender=admin)
    with ape.reverts("timelock: delay too long"):
        ch.set_timelock_delay(30 * 86_400 + 1, sender=admin)
    with ape.reverts("timelock: not queued"):
        ch.set_timelock_delay(0, sender=admin)
    data = bytes(ch.set_timelock_delay.encode_input(0))
    (queued,) = ch.queue(data, sender=admin).decode_logs(ch.CallQueued)
    chain.pending_timestamp = queued.eta
    ch.set_timelock_delay(0, sender=admin)
    assert ch.delay() == 0
    ch.set_loss_policy(0, 2, sender=admin)  # no delay: at once
    assert ch.markets(0).loss_policy == 2


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_timelock__emergency_actions_are_never_delayed(system, admin, traders):
    ch, oracle = system.clearing_house, system.oracle
    for contract in (ch, oracle):
        contract.set_timelock_delay(DELAY, sender=admin)
    ch.set_keeper(system.keeper, False, sender=admin)  # revoking: at once
    assert not ch.is_keeper(system.keeper)
    oracle.set_keeper(system.keeper, False, sender=admin)
    assert not oracle.keepers(system.keeper)
    ch.set_reduce_only(0, True, sender=admin)  # the kill switch
    assert ch.markets(0).reduce_only
