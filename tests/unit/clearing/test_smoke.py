from perpclear.model import WAD


def test_trade_smoke(system, traders):
    u = system.unit
    a, b = traders[:2]
    system.fund(a, 10_000 * u)
    system.fund(b, 10_000 * u)
    system.trade(a, b, 0, WAD, 2_000 * u)
    assert system.clearing_house.positions(a, 0).size == WAD
