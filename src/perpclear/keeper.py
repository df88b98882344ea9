"""The keeper of a cascade: whom to liquidate, where, and the transactions that do it.

``Watch`` is the keeper's off-chain watch list (which holders could be
liquidatable now, without reading every one). ``Keeper`` reads the system
(the scan, positions, the ADL queue) and sends the keeper's transactions: the
keeper contract's ``run`` (marks and a liquidation in one transaction),
liquidations and ADL calls. The cascade runner (``perpclear.cascade``) decides
when, and records what each transaction emitted.
"""

from __future__ import annotations

from perpclear.adl import queue
from perpclear.deployment import Deployment
from perpclear.engine import Event
from perpclear.units import EQUITY_SCALE, KEEPER_MAX_TARGETS, LENS_MAX_ACCOUNTS

# Accounts per PROFIT clawback the keeper passes: about 45k gas each, so 500
# fit a 30M-gas block with the clawback's fixed part and the take-over.
PAYERS_PER_BLOCK = 500


class Watch:
    """A keeper's off-chain watch list: which holders could be liquidatable now.

    Reading every holder's health on chain each block is the cost that grows
    with the number of traders. The watch keeps each holder's exact equity
    from its last read and replays what happened since, per block: the mark
    moves (sizes do not change without a liquidation, which forces a fresh
    read), the EQUITY rates (equity shrinks by ``1 - r``) and the
    OPEN_INTEREST per-contract charges of its side. An account whose replayed
    equity is within 1 % (plus a few units per event) of its maintenance
    margin is read on chain again, so the watch only ever saves reads of
    accounts far from liquidation; the final sweep reads every holder.
    """

    def __init__(self, mmr_bps: list[int]):
        self.mmr = [m / 10_000 for m in mmr_bps]
        self.blocks: list[dict] = []  # per block: marks, equity factor, OI charge per (market, is_long)
        self.entries: dict[str, tuple[float, list[int], int]] = {}  # account -> (equity, sizes, block)

    def open_block(self, marks: list[int]) -> None:
        self.blocks.append({"marks": list(marks), "factor": 1.0, "oi": {}, "events": 0})

    def socialized(self, ev: Event) -> None:
        b = self.blocks[-1]
        b["events"] += 1
        if ev.loss_policy == 1:  # EQUITY: r in EQUITY_SCALE
            b["factor"] *= max(0.0, 1 - ev.rate / EQUITY_SCALE)
        else:  # OPEN_INTEREST: the side opposite the bankrupt position pays `rate` per contract
            key = (ev.market, ev.index_after > ev.index_before)  # the long index rises when longs pay
            b["oi"][key] = b["oi"].get(key, 0) + ev.rate

    def record(self, account: str, equity: int, sizes: list[int]) -> None:
        """An exact read at the start of the current block (before its liquidations)."""
        self.entries[account] = (float(equity), list(sizes), len(self.blocks) - 1)

    def forget(self, account: str) -> None:
        self.entries.pop(account, None)

    def may_be_liquidatable(self, account: str) -> bool:
        entry = self.entries.get(account)
        if entry is None:
            return True
        equity, sizes, start = entry
        marks = self.blocks[start]["marks"]
        events = 0
        for b in self.blocks[start:]:
            equity += sum(s * (p - q) for s, p, q in zip(sizes, b["marks"], marks)) / 1e18
            marks = b["marks"]
            if b is self.blocks[-1]:
                break  # this block's socializations come after the scan
            equity *= b["factor"]
            for (m, long), per_contract in b["oi"].items():
                if sizes[m] and (sizes[m] > 0) == long:
                    equity -= abs(sizes[m]) * per_contract / 1e36
            events += b["events"]
        maintenance = sum(abs(s) * p * r for s, p, r in zip(sizes, marks, self.mmr)) / 1e18
        return equity < maintenance * 1.01 + 10 + 4 * events


class Keeper:
    """The keeper of one deployment: its holders, its watch list and the marks it pushed last."""

    def __init__(self, d: Deployment, mmr_bps: list[int], marks: dict[int, int], order: dict[str, int]):
        """``marks``: the opening marks; ``order``: account -> trader index (who is liquidated first)."""
        self.d, self.engine = d, d.engine
        self.markets = len(mmr_bps)
        self.watch = Watch(mmr_bps)
        self.marks = dict(marks)
        self.order = order
        self.holders: set[str] = set()

    # -- reads
    def open_block(self, marks: dict[int, int]) -> None:
        """A new block: the marks about to be pushed (markets frozen this block keep theirs)."""
        self.marks.update(marks)
        self.watch.open_block([self.marks[m] for m in range(self.markets)])

    def targets(self, due: list[str], delay_blocks: int) -> list[str]:
        """Whom the block's keeper transaction may liquidate, in trader order: the
        accounts already ``due`` and, when the keeper is not late, every holder the
        watch cannot rule out at the new marks (the contract skips the healthy)."""
        found = set(due)
        if delay_blocks == 0:
            found |= {a for a in self.holders if self.watch.may_be_liquidatable(a)}
        return sorted(found, key=lambda a: self.order[a])

    def scan(self, exact: bool = False) -> list[str]:
        """Liquidatable holders, in trader order: ``is_liquidatable`` of every
        holder when ``exact``, else an exact read of those the watch cannot rule out."""
        d, e = self.d, self.engine
        holders = sorted(self.holders, key=lambda a: self.order[a])
        if exact:
            flags = e.calls([(d.lens, "is_liquidatable", (a,)) for a in holders])
            return [a for a, f in zip(holders, flags) if f]
        doubtful = [a for a in holders if self.watch.may_be_liquidatable(a)]
        n = LENS_MAX_ACCOUNTS
        states = e.calls([(d.lens, "account_states", (doubtful[i : i + n],)) for i in range(0, len(doubtful), n)])
        found = []
        for a, (equity, maintenance, sizes) in zip(doubtful, (row for part in states for row in part)):
            sizes = list(sizes[: self.markets])
            self.watch.record(a, equity, sizes)
            if any(sizes) and equity < maintenance:
                found.append(a)
        return found

    def _position_calls(self, account: str) -> list[tuple]:
        return [(self.d.clearing_house, "positions", (account, m)) for m in range(self.markets)]

    def sizes(self, accounts: list[str]) -> list[list[int]]:
        """Each account's position size per market, in one batch of calls."""
        n = self.markets
        flat = [p[0] for p in self.engine.calls([c for a in accounts for c in self._position_calls(a)])]
        return [flat[i * n : (i + 1) * n] for i in range(len(accounts))]

    def positions(self, account: str) -> list[int]:
        return self.sizes([account])[0]

    def _largest(self, sizes: list[int]) -> int | None:
        """The market of the largest of ``sizes`` by notional at the keeper's marks (ties: the first)."""
        held = [(abs(s) * self.marks[m], m) for m, s in enumerate(sizes) if s]
        return max(held, key=lambda v: (v[0], -v[1]))[1] if held else None

    def largest_market(self, account: str) -> int | None:
        return self._largest(self.positions(account))

    def _beyond_vault(self, account: str, market: int) -> list[int] | None:
        """``account``'s sizes when it is bankrupt, the vault cannot cover it and
        ``market`` holds its last position (ADL and PROFIT apply), else None."""
        d, e = self.d, self.engine
        ch = d.clearing_house
        health, idle, params, *positions = e.calls([(ch, "health", (account,)), (d.vault, "idle_assets", ()),
                                                    (d.lens, "market_params", (market,))] + self._position_calls(account))
        sizes = [p[0] for p in positions]
        cap = params[-1]
        insurance = min(idle, cap) if cap else idle
        if health[0] >= 0 or -health[0] <= insurance or sum(1 for s in sizes if s) != 1:
            return None  # not bankrupt, the vault covers it, or other positions go first
        return sizes

    def adl_candidates(self, account: str, market: int, others: set[str]) -> list[str]:
        """When ADL applies (``_beyond_vault``): the opposite side's queue among
        ``others`` (highest rank first), else []."""
        sizes = self._beyond_vault(account, market)
        if sizes is None:
            return []
        d = self.d
        return [a for a, _ in queue(self.engine, d.clearing_house, d.deleverager, sorted(others), market, sizes[market] < 0)]

    def clawback_candidates(self, account: str, market: int, others: set[str]) -> list[str]:
        """When a PROFIT clawback applies (``_beyond_vault``): the accounts of
        ``others`` in profit in ``market`` (``rank`` > 0: PnL and equity
        positive), in ascending address order, at most ``PAYERS_PER_BLOCK``
        (the largest positions first: what fits a block's gas), else []."""
        if self._beyond_vault(account, market) is None:
            return []
        others = sorted(others - {account})
        size = {a: abs(sizes[market]) for a, sizes in zip(others, self.sizes(others)) if sizes[market]}
        ranks = self.engine.calls([(self.d.deleverager, "rank", (a, market)) for a in size])
        in_profit = sorted((a for a, rank in zip(size, ranks) if rank > 0), key=lambda a: -size[a])
        return sorted(in_profit[:PAYERS_PER_BLOCK], key=lambda a: int(a, 16))

    # -- transactions (each returns what it emitted)
    def run(self, marks: dict[int, int], targets: list[str]) -> list[Event] | None:
        """The keeper contract's ``run``: ``marks``, then the first of ``targets``
        (each at its largest market) that the clearing house accepts. None: nothing to send."""
        targets = targets[:KEEPER_MAX_TARGETS]
        plan = [(a, m) for a, sizes in zip(targets, self.sizes(targets)) if (m := self._largest(sizes)) is not None]
        if not marks and not plan:
            return None
        return self.d.run_keeper(marks, plan, 1 if plan else 0)

    def liquidate(self, account: str, market: int) -> list[Event]:
        return self.d.liquidate(account, market)

    def deleverage(self, account: str, market: int, candidates: list[str]) -> list[Event]:
        return self.d.deleverage(account, market, candidates)

    def clawback(self, account: str, market: int, candidates: list[str]) -> list[Event]:
        return self.d.clawback(account, market, candidates)

    def forget(self, account: str) -> None:
        """After a transaction changed the account's position: read it afresh next time."""
        self.watch.forget(account)
        if not any(self.positions(account)):
            self.holders.discard(account)
