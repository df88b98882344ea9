"""ADL for keepers: the queue of one market side, read from the chain.

``Deleverager.rank`` is the on-chain view of one position's rank; the queue is
every position on one side ranked, highest first, which is the order a keeper
passes to ``Deleverager.deleverage``. An account's queue position is its index
in ``queue(...)`` (0: deleveraged first).
"""

from __future__ import annotations

from perpclear.engine import Engine


def queue(engine: Engine, clearing_house: str, deleverager: str, accounts: list[str], market: int, long: bool) -> list[tuple[str, int]]:
    """(account, rank) of the positions of ``accounts`` on side ``long`` of
    ``market`` that are in profit, highest rank first (ties: by address)."""
    positions = engine.calls([(clearing_house, "positions", (a, market)) for a in accounts])
    side = [a for a, p in zip(accounts, positions) if p[0] != 0 and (p[0] > 0) == long]
    ranks = engine.calls([(deleverager, "rank", (a, market)) for a in side])
    return sorted(((a, r) for a, r in zip(side, ranks) if r > 0), key=lambda ar: (-ar[1], ar[0].lower()))


def queue_position(engine: Engine, clearing_house: str, deleverager: str, accounts: list[str], account: str, market: int) -> int | None:
    """Where ``account``'s position in ``market`` stands in its side's queue; None when not in it."""
    size = engine.call(clearing_house, "positions", account, market)[0]
    if size == 0:
        return None
    ranked = [a for a, _ in queue(engine, clearing_house, deleverager, sorted(set(accounts) | {account}), market, size > 0)]
    return ranked.index(account) if account in ranked else None
