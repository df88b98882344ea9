"""PriceOracle: price pushes, move limit, batch, staleness views."""

import ape

MAX_AGE = 3_600


# --- set_price ---


def test_set_price__updates_and_logs(oracle, keeper, set_mark, unit, chain):
    tx = set_mark(0, 1_900 * unit)
    assert oracle.price(0) == 1_900 * unit
    assert oracle.last_price(0) == (1_900 * unit, chain.blocks[tx.block_number].timestamp)
    logs = list(tx.decode_logs(oracle.PriceUpdated))
    assert [(log.market, log.price, log.previous, log.keeper) for log in logs] == [
        (0, 1_900 * unit, 2_000 * unit, keeper)
    ]


def test_set_price__max_move_disabled__any_crash_accepted(oracle, set_mark):
    # 2000 -> 1 raw unit: a 99.99...% crash, accepted with max_move 0
    set_mark(0, 1)
    assert oracle.price(0) == 1


def test_set_price__within_max_move__accepted_at_exact_bound(oracle, admin, set_mark, unit):
    oracle.set_max_move(0, 500, sender=admin)  # 5%
    set_mark(0, 2_100 * unit)  # +5% exactly
    set_mark(0, 1_995 * unit)  # -5% exactly of 2100
    assert oracle.price(0) == 1_995 * unit


def test_set_price__beyond_max_move_up__reverts(oracle, admin, keeper, unit):
    oracle.set_max_move(0, 500, sender=admin)
    with ape.reverts("oracle: move too large"):
        oracle.set_price(0, 2_100 * unit + 1, sender=keeper)  # 5% + 1 unit


def test_set_price__beyond_max_move_down__reverts(oracle, admin, keeper, unit):
    oracle.set_max_move(0, 500, sender=admin)
    with ape.reverts("oracle: move too large"):
        oracle.set_price(0, 1_900 * unit - 1, sender=keeper)  # -5% - 1 unit


def test_set_price__same_price__refreshes_timestamp(oracle, admin, set_mark, unit, chain):
    oracle.set_max_move(0, 1, sender=admin)
    chain.pending_timestamp += MAX_AGE + 10
    set_mark(0, 2_000 * unit)  # 0% move, fresh again
    assert oracle.price(0) == 2_000 * unit


# --- set_prices ---


def test_set_prices__batch__updates_all_and_logs(oracle, keeper, unit):
    tx = oracle.set_prices([0, 1], [2_010 * unit, 29 * unit], sender=keeper)
    assert oracle.price(0) == 2_010 * unit
    assert oracle.price(1) == 29 * unit
    logs = list(tx.decode_logs(oracle.PriceUpdated))
    assert [(log.market, log.price, log.previous) for log in logs] == [
        (0, 2_010 * unit, 2_000 * unit),
        (1, 29 * unit, 30 * unit),
    ]


def test_set_prices__empty__noop(oracle, keeper, unit):
    tx = oracle.set_prices([], [], sender=keeper)
    assert list(tx.decode_logs(oracle.PriceUpdated)) == []
    assert oracle.price(0) == 2_000 * unit


def test_set_prices__one_bad_entry__reverts_whole_batch(oracle, keeper, unit):
    with ape.reverts("oracle: zero price"):
        oracle.set_prices([0, 1], [1_000 * unit, 0], sender=keeper)
    with ape.reverts("oracle: unknown market"):
        oracle.set_prices([0, 3], [1_000 * unit, 1], sender=keeper)
    assert oracle.price(0) == 2_000 * unit


def test_set_prices__move_limit_applies_per_entry(oracle, admin, keeper, unit):
    oracle.set_max_move(1, 100, sender=admin)  # 1% on market 1 only
    with ape.reverts("oracle: move too large"):
        oracle.set_prices([0, 1], [1_000 * unit, 20 * unit], sender=keeper)
    oracle.set_prices([0, 1], [1_000 * unit, 30 * unit + 30 * unit // 100], sender=keeper)
    assert oracle.price(1) == 30_300 * unit // 1_000


# --- price / last_price / is_fresh ---


def test_price__at_max_age__still_fresh_then_stale_one_second_later(oracle, set_mark, unit, chain):
    tx = set_mark(0, 1_950 * unit)
    updated_at = chain.blocks[tx.block_number].timestamp
    chain.mine(timestamp=updated_at + MAX_AGE)
    assert oracle.price(0) == 1_950 * unit
    assert oracle.is_fresh(0)
    chain.mine(timestamp=updated_at + MAX_AGE + 1)
    with ape.reverts("oracle: stale price"):
        oracle.price(0)
    assert not oracle.is_fresh(0)
    # last_price never reverts for a listed market
    assert oracle.last_price(0) == (1_950 * unit, updated_at)


def test_price__stale__fresh_again_after_update(oracle, set_mark, unit, chain):
    chain.pending_timestamp += MAX_AGE + 100
    chain.mine()
    with ape.reverts("oracle: stale price"):
        oracle.price(1)
    set_mark(1, 31 * unit)
    assert oracle.price(1) == 31 * unit


def test_price__shorter_max_age__makes_price_stale(oracle, admin, chain):
    oracle.set_max_age(0, 10, sender=admin)
    chain.pending_timestamp += 11
    chain.mine()
    with ape.reverts("oracle: stale price"):
        oracle.price(0)
    assert not oracle.is_fresh(0)
    assert oracle.is_fresh(1)  # market 1 keeps 3600 s


def test_is_fresh__unknown_market__false(oracle):
    assert not oracle.is_fresh(6)


def test_set_price__18_decimal_magnitudes(fresh_oracle, admin, keeper):
    unit = 10**18
    fresh_oracle.set_keeper(keeper, True, sender=admin)
    fresh_oracle.add_market(0, MAX_AGE, 10_000, 2_000 * unit, sender=admin)  # max move 100%
    fresh_oracle.set_price(0, 4_000 * unit, sender=keeper)  # +100% exactly
    with ape.reverts("oracle: move too large"):
        fresh_oracle.set_price(0, 8_000 * unit + 1, sender=keeper)
    assert fresh_oracle.price(0) == 4_000 * unit


# --- the move limit binds over a window, not per update ---


def test_set_prices__duplicate_market__reverts(oracle, admin, keeper, unit):
    """Seen before: with a 10 % limit, one batch naming ETH eight times moved it -57 %."""
    oracle.set_max_move(0, 1_000, sender=admin)
    steps = [2_000 * unit * 9**k // 10**k for k in range(1, 9)]
    with ape.reverts("oracle: duplicate market"):
        oracle.set_prices([0] * 8, steps, sender=keeper)
    with ape.reverts("oracle: duplicate market"):
        oracle.set_prices([0, 1, 0], [1_900 * unit, 30 * unit, 1_850 * unit], sender=keeper)
    assert oracle.price(0) == 2_000 * unit


def test_move_window__default_is_one_second_per_market(oracle):
    assert oracle.move_window(0) == oracle.move_window(1) == 1


def test_set_price__max_move_binds_over_the_window(oracle, admin, keeper, unit, chain):
    oracle.set_max_move(0, 1_000, sender=admin)  # 10 %
    oracle.set_move_window(0, 3_600, sender=admin)
    oracle.set_price(0, 1_800 * unit, sender=keeper)  # -10 % from the anchor 2,000: the bound
    opened = oracle.anchors(0).opened_at
    assert oracle.anchors(0).price == 2_000 * unit
    with ape.reverts("oracle: move too large"):
        oracle.set_price(0, 1_700 * unit, sender=keeper)  # -15 % from the anchor, -5.6 % from 1,800
    with ape.reverts("oracle: move too large"):
        oracle.set_price(0, 1_800 * unit - 1, sender=keeper)
    oracle.set_price(0, 2_200 * unit, sender=keeper)  # back up: +10 % from the anchor
    chain.pending_timestamp = opened + 3_600  # the window closes: the next one opens at 2,200
    oracle.set_price(0, 1_980 * unit, sender=keeper)
    assert oracle.anchors(0).price == 2_200 * unit
    assert oracle.price(0) == 1_980 * unit


def test_set_move_window__updates_reopens_and_logs(oracle, admin, keeper, unit):
    oracle.set_max_move(0, 1_000, sender=admin)
    oracle.set_move_window(0, 3_600, sender=admin)
    oracle.set_price(0, 1_800 * unit, sender=keeper)
    tx = oracle.set_move_window(0, 60, sender=admin)
    assert [(log.market, log.seconds) for log in tx.decode_logs(oracle.MoveWindowSet)] == [(0, 60)]
    assert oracle.move_window(0) == 60
    assert oracle.anchors(0).opened_at == 0  # reopened: the next update anchors at 1,800
    oracle.set_price(0, 1_620 * unit, sender=keeper)
    assert oracle.anchors(0).price == 1_800 * unit


def test_set_move_window__bad_inputs__revert(oracle, admin, keeper):
    with ape.reverts("ownership: not owner"):
        oracle.set_move_window(0, 60, sender=keeper)
    with ape.reverts("oracle: unknown market"):
        oracle.set_move_window(5, 60, sender=admin)
    with ape.reverts("oracle: bad move window"):
        oracle.set_move_window(0, 0, sender=admin)
    with ape.reverts("oracle: bad move window"):
        oracle.set_move_window(0, 86_401, sender=admin)
    oracle.set_move_window(0, 86_400, sender=admin)
