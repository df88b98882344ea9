"""ClearingHouse governance: constructor, markets, loss policies, kill switch, roles, fee sweep."""

from dataclasses import replace

import ape
import pytest

from perpclear.model import WAD, MarketParams
from perpclear.units import POLICY_PROFIT
from perpclear.system import ORACLE_MAX_AGE, POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST

ZERO = "0x0000000000000000000000000000000000000000"
MAX_MARKETS = 8
MAX_SIZE = 10**30

# One bad field at a time, each against the default params (imr 10%, mmr 5%, penalty 2.5%).
BAD_PARAMS = [
    (dict(mmr_bps=0), "clearing: bad margin ratios"),
    (dict(mmr_bps=1_000), "clearing: bad margin ratios"),  # mmr == imr
    (dict(imr_bps=10_001), "clearing: bad margin ratios"),  # imr above 100%
    (dict(penalty_bps=500), "clearing: penalty not below maintenance"),  # penalty == mmr
    (dict(liquidator_share_bps=10_001), "clearing: bad liquidator share"),
    (dict(maker_fee_bps=1_001), "clearing: fee too high"),
    (dict(taker_fee_bps=1_001), "clearing: fee too high"),
    (dict(fee_insurance_share_bps=10_001), "clearing: bad insurance share"),
    (dict(oi_cap=0), "clearing: bad open interest cap"),
    (dict(oi_cap=MAX_SIZE + 1), "clearing: bad open interest cap"),
    (dict(max_funding_rate=WAD // 3_600 + 1), "clearing: funding cap too high"),
]

# Every bound met exactly: the widest params the contract accepts.
EDGE_PARAMS = MarketParams(
    imr_bps=10_000,
    mmr_bps=9_999,
    penalty_bps=9_998,
    liquidator_share_bps=10_000,
    maker_fee_bps=1_000,
    taker_fee_bps=1_000,
    fee_insurance_share_bps=10_000,
    oi_cap=MAX_SIZE,
    max_funding_rate=WAD // 3_600,
    max_insurance_draw=2**256 - 1,
)


# ---------------------------------------------------------------- constructor


def test_constructor__sets_immutables_and_owner(system, admin):
    ch = system.clearing_house
    assert ch.token() == system.token.address
    assert ch.oracle() == system.oracle.address
    assert ch.insurance_vault() == system.vault.address
    assert ch.fee_recipient() == admin.address
    assert ch.timelock() == system.timelock.address
    assert ch.owner() == admin.address
    assert ch.market_count() == 2


def test_constructor__zero_address__reverts(project, admin, token, oracle, vault, timelock):
    good = [token.address, oracle.address, vault.address, admin.address, timelock.address]
    for position in range(5):  # token, oracle, vault, fee recipient, timelock
        args = list(good)
        args[position] = ZERO
        with ape.reverts("timelock: zero address" if position == 4 else "clearing: zero address"):
            project.ClearingHouse.deploy(*args, sender=admin)


# ---------------------------------------------------------------- add_market


def _list_in_oracle(system, market, whole_price):
    system.oracle.add_market(market, ORACLE_MAX_AGE, 0, whole_price * system.unit, sender=system.admin)


def test_add_market__next_id_with_params_and_events(system, admin, chain):
    ch = system.clearing_house
    _list_in_oracle(system, 2, 60_000)  # BTC-PERP at 60_000
    params = MarketParams(imr_bps=500, mmr_bps=300, penalty_bps=100, oi_cap=50 * WAD)
    tx = ch.add_market(params.as_tuple(), POLICY_ADL, sender=admin)

    assert ch.market_count() == 3
    assert tuple(system.lens.market_params(2)) == params.as_tuple()
    state = system.lens.markets(2)
    assert state.loss_policy == POLICY_ADL
    assert state.last_accrual == chain.blocks[tx.block_number].timestamp
    assert (state.funding_rate, state.long_index, state.short_index) == (0, 0, 0)
    assert (state.long_open_interest, state.reduce_only) == (0, False)
    assert [(e.market, e.loss_policy) for e in tx.decode_logs(ch.MarketAdded)] == [(2, POLICY_ADL)]
    logged = tx.decode_logs(ch.MarketParamsSet)
    assert [(e.market, tuple(e.params)) for e in logged] == [(2, params.as_tuple())]


def test_add_market__bad_params__reverts(system, admin):
    _list_in_oracle(system, 2, 100)
    for fields, reason in BAD_PARAMS:
        bad = replace(MarketParams(), **fields)
        with ape.reverts(reason):
            system.clearing_house.add_market(bad.as_tuple(), POLICY_EQUITY, sender=admin)
    assert system.clearing_house.market_count() == 2


def test_add_market__edge_params__accepted(system, admin):
    """Every field at its largest accepted value reads back exactly from the
    packed parameters word, and the state word's fields next to each other
    keep their own values: the funding rate at the cap of either sign, the
    reduce-only flag and the largest policy id."""
    ch = system.clearing_house
    _list_in_oracle(system, 2, 100)
    ch.add_market(EDGE_PARAMS.as_tuple(), POLICY_PROFIT, sender=admin)
    assert tuple(system.lens.market_params(2)) == EDGE_PARAMS.as_tuple()
    for rate in (EDGE_PARAMS.max_funding_rate, -EDGE_PARAMS.max_funding_rate):
        ch.set_funding_rate(2, rate, sender=system.keeper)
        ch.set_reduce_only(2, rate > 0, sender=admin)
        state = system.lens.markets(2)
        assert (state.funding_rate, state.reduce_only, state.loss_policy) == (rate, rate > 0, POLICY_PROFIT)
        assert state.long_open_interest == 0 and state.last_accrual > 0


def test_add_market__unknown_policy__reverts(system, admin):
    _list_in_oracle(system, 2, 100)
    for policy in (0, 5):  # valid: 1 equity, 2 open interest, 3 ADL, 4 profit
        with ape.reverts("clearing: unknown policy"):
            system.clearing_house.add_market(MarketParams().as_tuple(), policy, sender=admin)


def test_add_market__not_priced_by_oracle__reverts(system, admin):
    # the oracle lists markets 0 and 1 only: market 2 has no price
    with ape.reverts("oracle: unknown market"):
        system.clearing_house.add_market(MarketParams().as_tuple(), POLICY_EQUITY, sender=admin)
    assert system.clearing_house.market_count() == 2


def test_add_market__too_many_markets__reverts(system, admin):
    ch = system.clearing_house
    for market in range(2, MAX_MARKETS):  # markets 2..7 fill the 8 slots
        _list_in_oracle(system, market, 10)
        ch.add_market(MarketParams().as_tuple(), POLICY_EQUITY, sender=admin)
    assert ch.market_count() == MAX_MARKETS
    _list_in_oracle(system, MAX_MARKETS, 10)
    with ape.reverts("clearing: too many markets"):
        ch.add_market(MarketParams().as_tuple(), POLICY_EQUITY, sender=admin)


# ---------------------------------------------------------------- set_market_params


def test_set_market_params__replaces_and_logs(system, admin):
    ch = system.clearing_house
    params = replace(MarketParams(), imr_bps=2_000, mmr_bps=1_000, oi_cap=3 * WAD)
    tx = ch.set_market_params(0, params.as_tuple(), sender=admin)
    assert tuple(system.lens.market_params(0)) == params.as_tuple()
    assert [(e.market, tuple(e.params)) for e in tx.decode_logs(ch.MarketParamsSet)] == [
        (0, params.as_tuple())
    ]
    # the other market is untouched
    assert tuple(system.lens.market_params(1)) == system.markets[1].params.as_tuple()


def test_set_market_params__bad_params__reverts(system, admin):
    for fields, reason in BAD_PARAMS:
        bad = replace(MarketParams(), **fields)
        with ape.reverts(reason):
            system.clearing_house.set_market_params(0, bad.as_tuple(), sender=admin)
    assert tuple(system.lens.market_params(0)) == MarketParams().as_tuple()


# ---------------------------------------------------------------- set_loss_policy


def test_set_loss_policy__sets_and_logs_previous(system, admin):
    ch = system.clearing_house
    tx = ch.set_loss_policy(0, POLICY_OPEN_INTEREST, sender=admin)
    assert system.lens.markets(0).loss_policy == POLICY_OPEN_INTEREST
    tx2 = ch.set_loss_policy(0, POLICY_ADL, sender=admin)
    assert system.lens.markets(0).loss_policy == POLICY_ADL
    logs = [*tx.decode_logs(ch.LossPolicySet), *tx2.decode_logs(ch.LossPolicySet)]
    assert [(e.market, e.previous, e.policy) for e in logs] == [
        (0, POLICY_EQUITY, POLICY_OPEN_INTEREST),
        (0, POLICY_OPEN_INTEREST, POLICY_ADL),
    ]
    assert system.lens.markets(1).loss_policy == POLICY_EQUITY


def test_set_loss_policy__unknown_policy__reverts(system, admin):
    for policy in (0, 5):
        with ape.reverts("clearing: unknown policy"):
            system.clearing_house.set_loss_policy(0, policy, sender=admin)
    assert system.lens.markets(0).loss_policy == POLICY_EQUITY


# ---------------------------------------------------------------- set_reduce_only


def test_set_reduce_only__blocks_opening_allows_reducing(system, admin, traders, open_position):
    ch, u = system.clearing_house, system.unit
    long, short, newcomer = traders[:3]
    for trader in (long, short, newcomer):
        system.fund(trader, 10_000 * u)
    open_position(long, short, 0, 2 * WAD, 2_000 * u)  # long 2 ETH, short -2 ETH

    tx = ch.set_reduce_only(0, True, sender=admin)
    assert system.lens.markets(0).reduce_only
    assert [(e.market, e.reduce_only) for e in tx.decode_logs(ch.ReduceOnlySet)] == [(0, True)]

    # a newcomer may not open; the long may not grow, even against a reducing short
    with ape.reverts("clearing: market reduce-only"):
        open_position(newcomer, long, 0, WAD, 2_000 * u)
    with ape.reverts("clearing: market reduce-only"):
        open_position(long, short, 0, WAD, 2_000 * u)
    # the short may not flip past zero: buying 3 against a short of 2 is a flip
    with ape.reverts("clearing: market reduce-only"):
        open_position(short, long, 0, 3 * WAD, 2_000 * u)

    # both sides shrink: the long sells 1, the short buys 1
    open_position(long, short, 0, -WAD, 2_000 * u)
    assert ch.positions(long, 0).size == WAD
    assert ch.positions(short, 0).size == -WAD
    # market 1 is not affected
    open_position(newcomer, short, 1, WAD, 30 * u)
    assert ch.positions(newcomer, 1).size == WAD

    ch.set_reduce_only(0, False, sender=admin)
    open_position(newcomer, long, 0, WAD, 2_000 * u)  # long reduces to 0
    assert ch.positions(newcomer, 0).size == WAD


# ---------------------------------------------------------------- roles


# The matcher role lives on the order book since matching moved to OrderBook.vy
# (tests/unit/orderbook); the clearing house only knows its order book.
@pytest.mark.parametrize("role", ["keeper"])
def test_set_role__grant_and_revoke(system, admin, traders, role):
    ch = system.clearing_house
    setter, getter = getattr(ch, f"set_{role}"), getattr(ch, f"is_{role}")
    tx = setter(traders[0], True, sender=admin)
    assert getter(traders[0])
    tx2 = setter(traders[0], False, sender=admin)
    assert not getter(traders[0])
    logs = [*tx.decode_logs(ch.KeeperSet), *tx2.decode_logs(ch.KeeperSet)]
    assert [(e.keeper, e.allowed) for e in logs] == [(traders[0].address, True), (traders[0].address, False)]


def test_set_fee_recipient__sets_and_logs(system, admin, traders):
    ch = system.clearing_house
    tx = ch.set_fee_recipient(traders[9], sender=admin)
    assert ch.fee_recipient() == traders[9].address
    assert [e.recipient for e in tx.decode_logs(ch.FeeRecipientSet)] == [traders[9].address]


# ---------------------------------------------------------------- access control


def test_owner_only__not_owner__reverts(system, traders, keeper, matcher):
    ch, outsider = system.clearing_house, traders[0]
    _list_in_oracle(system, 2, 100)
    calls = [
        lambda s: ch.add_market(MarketParams().as_tuple(), POLICY_EQUITY, sender=s),
        lambda s: ch.set_market_params(0, MarketParams().as_tuple(), sender=s),
        lambda s: ch.set_loss_policy(0, POLICY_ADL, sender=s),
        lambda s: ch.set_reduce_only(0, True, sender=s),
        lambda s: ch.set_order_book(outsider, sender=s),
        lambda s: ch.set_keeper(outsider, True, sender=s),
        lambda s: ch.set_fee_recipient(outsider, sender=s),
        lambda s: ch.transfer_ownership(outsider, sender=s),
    ]
    for call in calls:
        for sender in (outsider, keeper, matcher):  # roles grant no governance
            with ape.reverts("ownership: not owner"):
                call(sender)


def test_market_setters__unknown_market__reverts(system, admin):
    ch = system.clearing_house
    for call in (  # markets 0 and 1 exist; 2 does not
        lambda: ch.set_market_params(2, MarketParams().as_tuple(), sender=admin),
        lambda: ch.set_loss_policy(2, POLICY_ADL, sender=admin),
        lambda: ch.set_reduce_only(2, True, sender=admin),
    ):
        with ape.reverts("clearing: unknown market"):
            call()


def test_owner_only__zero_address__reverts(system, admin):
    ch = system.clearing_house
    for call in (
        lambda: ch.set_order_book(ZERO, sender=admin),
        lambda: ch.set_keeper(ZERO, True, sender=admin),
        lambda: ch.set_fee_recipient(ZERO, sender=admin),
    ):
        with ape.reverts("clearing: zero address"):
            call()
    assert (ch.fee_recipient(), ch.owner()) == (admin.address, admin.address)


# ---------------------------------------------------------------- sweep_fees


def test_sweep_fees__pays_protocol_and_insurance_shares(system, admin, traders, open_position, model):
    ch, token, u = system.clearing_house, system.token, system.unit
    maker, taker, recipient = traders[0], traders[1], traders[9]
    ch.set_fee_recipient(recipient, sender=admin)
    for trader in (maker, taker):
        system.fund(trader, 10_000 * u)
        model.deposit(str(trader), 10_000 * u)

    # 1.5 ETH at 2001.37: notional 3002.055; maker 2 bps, taker 5 bps, half to insurance
    price = 2_001 * u + 37 * u // 100
    open_position(maker, taker, 0, 3 * WAD // 2, price)
    model.trade(str(maker), str(taker), 0, 3 * WAD // 2, price, maker=str(maker))
    # 3 SOL at 30: notional 90; the roles swap, the old taker makes (and sells)
    open_position(taker, maker, 1, -3 * WAD, 30 * u)
    model.trade(str(maker), str(taker), 1, 3 * WAD, 30 * u, maker=str(taker))
    assert (ch.protocol_fees(), ch.insurance_fees()) == (model.protocol_fees, model.insurance_fees)
    assert model.protocol_fees > 0 and model.insurance_fees > 0

    balances = (token.balanceOf(recipient), token.balanceOf(system.vault), token.balanceOf(ch))
    tx = ch.sweep_fees(sender=traders[5])  # anyone may sweep
    assert token.balanceOf(recipient) == balances[0] + model.protocol_fees
    assert token.balanceOf(system.vault) == balances[1] + model.insurance_fees
    assert token.balanceOf(ch) == balances[2] - model.protocol_fees - model.insurance_fees
    assert (ch.protocol_fees(), ch.insurance_fees()) == (0, 0)
    assert [(e.protocol_amount, e.insurance_amount) for e in tx.decode_logs(ch.FeesSwept)] == [
        (model.protocol_fees, model.insurance_fees)
    ]

    # a second sweep has nothing left to move
    tx = ch.sweep_fees(sender=traders[5])
    assert [(e.protocol_amount, e.insurance_amount) for e in tx.decode_logs(ch.FeesSwept)] == [(0, 0)]
    assert token.balanceOf(recipient) == balances[0] + model.protocol_fees
