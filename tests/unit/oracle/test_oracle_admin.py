"""PriceOracle: ownership, keepers, market listing and parameters."""

import ape


def test_deploy__deployer_is_owner_and_nothing_listed(fresh_oracle, admin):
    assert fresh_oracle.owner() == admin
    assert not fresh_oracle.listed(0)
    assert not fresh_oracle.is_fresh(0)


def test_fixture__markets_and_keeper(oracle, keeper, unit):
    assert oracle.keepers(keeper)
    assert oracle.price(0) == 2_000 * unit
    assert oracle.price(1) == 30 * unit
    assert oracle.max_age(0) == 3_600
    assert oracle.max_move_bps(0) == 0


# --- set_keeper ---


def test_set_keeper__allow_then_revoke__logs(oracle, admin, traders):
    tx = oracle.set_keeper(traders[0], True, sender=admin)
    assert oracle.keepers(traders[0])
    logs = list(tx.decode_logs(oracle.KeeperSet))
    assert [(log.keeper, log.allowed) for log in logs] == [(traders[0], True)]
    oracle.set_keeper(traders[0], False, sender=admin)
    assert not oracle.keepers(traders[0])
    with ape.reverts("oracle: not keeper"):
        oracle.set_price(0, 1, sender=traders[0])


# --- add_market ---


def test_add_market__lists_with_price_and_logs(fresh_oracle, admin, chain):
    tx = fresh_oracle.add_market(7, 600, 500, 1_234, sender=admin)
    assert fresh_oracle.listed(7)
    assert fresh_oracle.max_age(7) == 600
    assert fresh_oracle.max_move_bps(7) == 500
    price, updated_at = fresh_oracle.last_price(7)
    assert price == 1_234
    assert updated_at == chain.blocks[tx.block_number].timestamp
    assert fresh_oracle.price(7) == 1_234
    logs = list(tx.decode_logs(fresh_oracle.MarketAdded))
    assert [(log.market, log.max_age, log.max_move_bps, log.price) for log in logs] == [
        (7, 600, 500, 1_234)
    ]


# --- set_max_age ---


def test_set_max_age__updates_and_logs(oracle, admin):
    tx = oracle.set_max_age(1, 60, sender=admin)
    assert oracle.max_age(1) == 60
    logs = list(tx.decode_logs(oracle.MaxAgeSet))
    assert [(log.market, log.max_age) for log in logs] == [(1, 60)]


# --- set_max_move ---


def test_set_max_move__updates_and_logs(oracle, admin):
    tx = oracle.set_max_move(0, 1_000, sender=admin)
    assert oracle.max_move_bps(0) == 1_000
    logs = list(tx.decode_logs(oracle.MaxMoveSet))
    assert [(log.market, log.max_move_bps) for log in logs] == [(0, 1_000)]
    oracle.set_max_move(0, 0, sender=admin)  # 0 = disabled
    assert oracle.max_move_bps(0) == 0


