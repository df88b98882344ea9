"""The ledger guard (tests/conftest.py) checks conservation after every
transaction, reading every view it needs in one batched eth_call
(tests/ViewBatch.vy): it must read exactly what the plain views read, and
fail the test that breaks the identity."""

import dataclasses

import pytest

from perpclear.model import WAD


def test_batched_reads_equal_the_plain_views(system, traders):
    a, b = traders[:2]
    system.fund(a, 5_000 * system.unit)
    system.fund(b, 5_000 * system.unit)
    system.trade(a, b, 0, WAD, 2_000 * system.unit)
    ch = system.clearing_house
    calls = [(system.token, "balanceOf", (ch.address,))] + [(ch, n, ()) for n in system.LEDGER] + [
        (ch, "collateral", (x.address,)) for x in (a, b)] + [(ch, "positions", (x.address, m)) for x in (a, b) for m in (0, 1)]
    plain = dataclasses.replace(system, view_batch=None)
    assert system.read(calls) == [tuple(v) if isinstance(v, tuple) else v for v in plain.read(calls)]
    assert system.conservation_errors() == plain.conservation_errors() == []


def test_the_guard_fails_a_transaction_that_breaks_the_identity(system, traders):
    donor = traders[0]
    system.fund(donor, 10 * system.unit, deposit=0)
    with pytest.raises(AssertionError, match=r"conservation broken .*balance \+ bad_debt \+ loss_receivable"):
        system.token.transfer(system.clearing_house, 1, sender=donor)  # tokens no account owns
