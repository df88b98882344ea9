"""The tests' harness is engine-agnostic: the same story on titanoboa and on
revm emits the same events, leaves the same state and agrees with the exact
model to the unit on both (ape's chains run it in tests/unit/clearing and the
end-to-end story)."""

import pytest

from perpclear.engine import EngineError
from perpclear.model import POLICY_EQUITY, POLICY_OPEN_INTEREST, WAD

from harness import ETH, SOL, Mirror, key


def story(engine: str):
    """Funding, a gap, a bankrupt liquidation under EQUITY (ETH) and under
    OPEN_INTEREST (SOL) with an insurance draw, a settlement, a refusal; the
    events of every step and the accounts' final state."""
    m = Mirror.in_process(6, policies=(POLICY_EQUITY, POLICY_OPEN_INTEREST), vault_assets=30 * 10**6, engine=engine)
    u = m.u
    a, b, c = key(11), key(12), key(13)
    for who, margin in ((a, 250), (b, 10_000), (c, 130)):
        m.fund(who, margin * u)
    # a: long 1 ETH at 2,000 on 250; c: long 20 SOL at 30 on 130; b: short both.
    sent = [m.trade(a, b, ETH, WAD, 2_000 * u), m.trade(c, b, SOL, 20 * WAD, 30 * u, maker="seller")]
    sent.append(m.set_funding_rate(ETH, 10**10))
    m.wait(3_600)
    m.refresh_marks()
    sent.append(m.settle(b)[2])
    sent.append(m.set_mark(ETH, 1_700 * u))
    sent.append(m.set_mark(SOL, 19 * u))
    eth, sol = m.liquidate(a, ETH), m.liquidate(c, SOL)
    assert eth.bankrupt is not None and eth.socialized is not None  # the vault's 30 did not cover 50
    assert sol.bankrupt is not None and sol.socialized.loss_policy == POLICY_OPEN_INTEREST
    sent += [eth.events, sol.events, m.settle(b)[2]]
    with pytest.raises(EngineError, match="clearing: zero amount"):
        m.deposit(a, 0)
    m.agree(a, b, c, m.liquidator, m.mm)
    m.check_accounts([a.address, b.address, c.address])
    state = [m.ch_view("collateral", who.address) for who in (a, b, c)] + [m.ch_view("health", who.address)
                                                                            for who in (a, b, c)]
    return [[(e.name, e.args) for e in events] for events in sent], state


def test_the_same_story_on_titanoboa_and_revm():
    boa_events, boa_state = story("boa")
    revm_events, revm_state = story("revm")
    assert boa_events == revm_events
    assert boa_state == revm_state
