"""What a stale mark still allows, action by action.

Seen before: a stale oracle in one market blocked every action of the accounts
trading it, reduce-only trades and withdrawals included, and made
`InsuranceVault.totalAssets()` revert while the backstop account traded it
(which blocked vault deposits and exits). The rules now:

- valuation: a position whose mark is stale is valued at the last mark moved
  against its holder by the market's initial margin rate (a long at
  p(1 - imr), a short at p(1 + imr)); the margin requirements use that price;
  `equity`, `health` and the lens never revert;
- withdrawals: what that valuation leaves above initial margin;
- fills in the stale market: reductions only ("clearing: stale mark, reduce
  only"); fills elsewhere: as usual, with the conservative valuation;
- liquidations: never on a stale mark ("oracle: stale price"); the lens says
  not liquidatable;
- funding: nothing accrues over the stale interval until the next fresh mark,
  which prices the whole interval; a new rate waits for a fresh mark;
- vault: exits priced with the conservative backstop equity; deposits wait
  for a fresh mark ("vault: backstop mark stale, deposits wait").

Every step is checked against the exact model (`Mirror.check`), both decimals.
Market 0 is ETH (imr 10 %), market 1 SOL; only ETH goes stale here.
"""

import ape
import pytest
from perpclear.engine import EngineError
from perpclear.model import WAD

ETH, SOL = 0, 1
MAX_AGE = 3_600
HUGE = 10**30


@pytest.fixture
def opened(open_long):
    """Long 1 ETH at 2,000 on 1,000 of margin against a short with 10,000."""
    return open_long(1_000)


def go_stale(mirror):
    """ETH's mark becomes one second too old; SOL's is pushed again and stays fresh."""
    mirror.wait(MAX_AGE + 1)
    mirror.set_mark(SOL, 30 * mirror.system.unit)
    assert not mirror.fresh(ETH) and mirror.fresh(SOL)


def test_stale_mark__valued_against_the_holder(opened, trader, counterparty):
    mirror, ch, u = opened, opened.ch, opened.system.unit
    fresh_equity = ch.health(trader).equity, ch.health(counterparty).equity
    go_stale(mirror)
    # The long at 2,000 x 0.9 = 1,800, the short at 2,200: each loses 200.
    assert ch.health(trader).equity == fresh_equity[0] - 200 * u
    assert ch.health(counterparty).equity == fresh_equity[1] - 200 * u
    # Margins on the moved prices too: 10 % / 5 % of 1,800 and of 2,200.
    assert tuple(ch.health(trader))[1:] == (90 * u, 180 * u)
    assert tuple(ch.health(counterparty))[1:] == (110 * u, 220 * u)
    mirror.agree(trader, counterparty)


def test_stale_mark__withdraw_what_the_valuation_leaves_free(opened, trader, counterparty, traders):
    mirror, ch, lens, u = opened, opened.ch, opened.lens, opened.system.unit
    saver = traders[2]
    mirror.fund(saver, 500 * u)
    go_stale(mirror)
    # The long: equity 1,000 - 0.4 (fee) - 200 = 799.6 against 180 of initial margin.
    free = lens.max_withdraw(trader)
    assert free == ch.health(trader).equity - ch.health(trader).initial == 619_600 * u // 1_000
    with ape.reverts("clearing: below initial margin"):
        ch.withdraw(free + 1, sender=trader)
    mirror.withdraw(trader, free)
    mirror.withdraw(saver, 500 * u)  # no position, no price needed
    mirror.agree(trader, counterparty, saver)


def test_stale_mark__fills_only_reduce(opened, trader, counterparty, traders):
    mirror, ch, u = opened, opened.ch, opened.system.unit
    newcomer = traders[2]
    mirror.fund(newcomer, 10_000 * u)
    go_stale(mirror)
    expiry = mirror.now + 100 * MAX_AGE
    with ape.reverts("clearing: stale mark, reduce only"):  # the newcomer would open
        mirror.system.trade(newcomer, counterparty, ETH, WAD // 10, 2_000 * u, expiry=expiry)
    with ape.reverts("clearing: stale mark, reduce only"):  # the short would grow
        mirror.system.trade(trader, counterparty, ETH, WAD // 10, 2_000 * u, expiry=expiry)
    with ape.reverts("clearing: stale mark, reduce only"):  # the long would flip
        mirror.system.trade(counterparty, trader, ETH, 2 * WAD, 2_000 * u, expiry=expiry)
    # Both sides reduce: they close half between them, at a price they agree.
    mirror.trade(counterparty, trader, ETH, WAD // 2, 1_990 * u)
    assert ch.positions(trader, ETH).size == ch.positions(counterparty, ETH).size * -1 == WAD // 2
    # A fresh market trades as usual for an account holding the stale one.
    mirror.trade(trader, newcomer, SOL, WAD, 30 * u)
    mirror.agree(trader, counterparty, newcomer)


def test_stale_mark__liquidation_waits_for_a_fresh_mark(opened, trader, counterparty, liquidator):
    mirror, ch, lens, u = opened, opened.ch, opened.lens, opened.system.unit
    mirror.fund(liquidator, 10_000 * u)
    mirror.set_mark(ETH, 1_040 * u)  # equity 39.6 < maintenance 52: liquidatable
    assert lens.is_liquidatable(trader)
    go_stale(mirror)
    assert not lens.is_liquidatable(trader) and lens.max_liquidation_size(trader, ETH) == 0
    with ape.reverts("oracle: stale price"):
        ch.liquidate(trader, ETH, HUGE, False, sender=liquidator)
    mirror.agree(trader, counterparty)
    mirror.set_mark(ETH, 1_040 * u)
    assert lens.is_liquidatable(trader)
    mirror.liquidate(trader, ETH, HUGE, by=liquidator)
    mirror.agree(trader, counterparty, liquidator)


def test_stale_mark__funding_waits_and_the_next_mark_prices_the_interval(opened, trader, counterparty, keeper):
    mirror, ch, u = opened, opened.ch, opened.system.unit
    rate = 123_456_789
    start = mirror.set_funding_rate(ETH, rate).timestamp
    go_stale(mirror)
    index = mirror.lens.markets(ETH).long_index
    mirror.settle(trader, by=keeper)  # no revert, nothing accrues
    assert mirror.lens.markets(ETH).long_index == index and mirror.lens.markets(ETH).last_accrual == start
    assert mirror.lens.pending_funding(trader, ETH) == 0  # accrued so far: already settled
    with ape.reverts("oracle: stale price"):  # a new rate never reaches back over the gap
        ch.set_funding_rate(ETH, 2 * rate, sender=keeper)
    mirror.agree(trader, counterparty)

    mirror.set_mark(ETH, 2_100 * u)
    mirror.settle(trader, by=keeper)
    state = mirror.lens.markets(ETH)
    elapsed = state.last_accrual - start
    assert elapsed > MAX_AGE and state.long_index == index + rate * 2_100 * u * elapsed  # the whole interval at 2,100
    mirror.agree(trader, counterparty)


def test_stale_mark__vault_exits_priced_conservatively_and_deposits_wait(opened, trader, counterparty, insurer, keeper):
    mirror, ch, u = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(5_000 * u)
    mirror.fund_backstop(2_000 * u)
    mirror.set_mark(ETH, 1_040 * u)
    mirror.liquidate(trader, ETH, HUGE, by=keeper, backstop=True)  # the vault's account now holds a long
    assert ch.positions(vault, ETH).size > 0
    fresh_assets = vault.totalAssets()
    go_stale(mirror)

    # totalAssets no longer reverts: idle + the backstop equity valued against it.
    equity = ch.health(vault).equity
    assert vault.totalAssets() == token.balanceOf(vault) + equity < fresh_assets
    with pytest.raises(EngineError, match="vault: backstop mark stale, deposits wait"):
        mirror.fund_vault(100 * u)
    with ape.reverts("vault: backstop mark stale, deposits wait"):
        vault.mint(10**3, insurer, sender=insurer)
    # Exits go on, at the conservative price.
    shares = vault.balanceOf(insurer) // 2
    assert vault.convertToAssets(shares) < fresh_assets // 2
    vault.request_redeem(shares, sender=insurer)

    mirror.set_mark(ETH, 1_040 * u)
    mirror.fund_vault(100 * u)  # fresh again: deposits resume
    mirror.agree(trader, counterparty, vault)
