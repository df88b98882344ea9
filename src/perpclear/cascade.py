"""The cascade runner: one scenario, any engine, a result object.

``run_cascade(scenario, engine)`` deploys a fresh system on the engine, funds
the insurance vault, a market maker, the keeper contract's margin (the
liquidator) and the scenario's traders, opens every trader's positions with
signed orders against the market maker, then plays the price path one block
at a time:

1. the keeper pushes each market's mark: the path's price, moved by the
   accumulated liquidation impact (``Market.impact_bps`` per ``impact_depth``
   of notional liquidated, down for longs, up for shorts), unless the path
   freezes the oracle for that block. It does so through the keeper contract
   (``Keeper.run``), in the same transaction as the block's first liquidation:
   its targets are the accounts already due and, with ``delay_blocks = 0``,
   every holder the watch list cannot rule out at the new marks (the contract
   skips those the clearing house refuses), so no transaction can come
   between a mark and the first liquidation it makes due (ADL and PROFIT
   markets: the deleverager goes first, so the marks go alone);
2. it scans every account with a position (``is_liquidatable``) and queues the
   new ones, due ``delay_blocks`` later;
3. it liquidates due accounts, lowest trader index first (an ADL market's
   bankrupt last position is first deleveraged; a PROFIT market's residual is
   first clawed back from the accounts in profit), at most
   ``liquidations_per_block`` and ``gas_budget // gas_per_liquidation`` calls
   per block (the first one counted); a queued account that is no longer
   liquidatable is skipped.

After the path the price holds for up to ``settle_blocks`` blocks so the keeper
can finish, then every account is settled (``settle_funding``: pending EQUITY
charges and OPEN_INTEREST funding-index charges are booked, each with its
event) and the invariants are checked. Same scenario and seed: same result, on
every engine (only ``backend`` and ``timings`` differ).
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Callable

from perpclear.deployment import CHUNK, Deployment, Roles, deploy, trader_key
from perpclear.engine import Engine, Event
from perpclear.keeper import Keeper
from perpclear.units import ADL_SKIP, LENS_MAX_ACCOUNTS, MAX_CANDIDATES
from perpclear.results import AccountResult, CascadeResult, adl_charge, event_record, withheld
from perpclear.scenario import Scenario, TraderPlan, path_points, plan_traders, to_units

# Runs with up to this many traders record each account's equity and share at
# every socialization (``CascadeResult.fairness``): two reads of every account
# per bankruptcy, which larger runs skip.
FAIRNESS_MAX_TRADERS = 2_000


# --------------------------------------------------------------------- runner


class Cascade:
    """Runs one scenario on one engine. ``run()`` returns the ``CascadeResult``."""

    def __init__(self, sc: Scenario, engine: Engine, progress: Callable[[str, int, int], None] | None = None,
                 deployment: Deployment | None = None):
        """``deployment``: play on a system deployed before (for ``sc``, with its
        roles able to sign) instead of deploying a fresh one."""
        self.sc = sc
        self.deployment = deployment
        self.engine = engine
        self.progress = progress or (lambda phase, done, total: None)
        self.plans: list[TraderPlan] = plan_traders(sc)
        self.traders = [trader_key(sc.seed, p.index) for p in self.plans]
        self.index = {t.address: p.index for t, p in zip(self.traders, self.plans)}
        self.roles = deployment.roles if deployment else Roles()
        self.index[self.roles.market_maker.address] = -1
        self.liq_count: dict[str, int] = {}
        self.records: dict[str, list[dict]] = {
            k: [] for k in ("liquidations", "bankruptcies", "socializations", "residuals", "settlements", "deleveraged",
                            "adl_runs", "adl_skipped", "clawbacks", "clawback_runs", "openings")
        }
        self.blocks: list[dict] = []
        self.impact = [Fraction(0)] * len(sc.markets)
        self.fairness: list[dict] | None = [] if len(self.plans) <= FAIRNESS_MAX_TRADERS else None
        # Equities read for the fairness record (account -> equity, block read)
        # and the accounts a transaction has changed since.
        self._equities: tuple[dict[str, int], int] = ({}, -1)
        self._touched: set[str] = set()
        self._tx0 = 0

    # -- set-up
    def setup(self) -> Deployment:
        sc, u = self.sc, self.sc.unit
        d = self.deployment or deploy(self.engine, sc, self.roles)
        self.d = d
        r = self.roles
        # The liquidator is the keeper contract's margin account.
        self.liquidator = d.keeper
        self.index[d.keeper] = -2
        opening = {m: to_units(mk.price, u) for m, mk in enumerate(sc.markets)}
        self.keeper = Keeper(d, [m.mmr_bps for m in sc.markets], opening, self.index)
        # The market maker takes the other side of every trader: size its margin
        # (and the liquidator's) on the gross notional, as if every trader were on one side.
        gross = sum(
            size * to_units(sc.markets[m].price, u) // 10**18 for p in self.plans for m, size in p.legs
        )
        mm_collateral = to_units(sc.market_maker_collateral, u) or max(gross // 2, 1_000 * u)
        liquidator_collateral = max(gross, 1_000 * u)
        self.deposits = {t.address: p.collateral for t, p in zip(self.traders, self.plans)}
        self.deposits[r.market_maker.address] = mm_collateral
        self.deposits[d.keeper] = liquidator_collateral
        vault_assets = to_units(sc.vault.assets, u)
        if vault_assets:
            d.fund_vault(vault_assets)
        d.fund([(r.market_maker, mm_collateral)])
        d.fund_keeper(liquidator_collateral)
        funded = list(zip(self.traders, (p.collateral for p in self.plans)))
        for i in range(0, len(funded), CHUNK):
            d.fund(funded[i : i + CHUNK])
            self.progress("fund", min(i + CHUNK, len(funded)), len(funded))
        # Open every leg against the market maker at the opening price (the buyer's order is the maker's).
        fills = [
            d.open_tx(t, m, size if p.is_long else -size, to_units(sc.markets[m].price, u))
            for t, p in zip(self.traders, self.plans)
            for m, size in p.legs
        ]
        self._tx0 = self.engine.tx_count
        for i in range(0, len(fills), CHUNK):
            logs = self.engine.send(fills[i : i + CHUNK])
            first = self.engine.tx_count - len(logs) - self._tx0
            for j, evs in enumerate(logs):
                for log, ev in enumerate(evs):
                    if ev.name == "OrderFilled":  # without the order hashes (they name the book's address)
                        rec = event_record(ev, -1, first + j, log)
                        del rec["maker_hash"], rec["taker_hash"]
                        self.records["openings"].append(rec)
            self.progress("open", min(i + CHUNK, len(fills)), len(fills))
        self.keeper.holders = {t.address for t, p in zip(self.traders, self.plans) if p.legs}
        return d

    # -- one block
    def _marks(self, block: int, points: list[list[float | None]]) -> dict[int, int]:
        """The marks to push this block (market -> price), impact included; frozen markets absent."""
        marks = {}
        for m, pts in enumerate(points):
            target = pts[min(block, len(pts) - 1)]
            if target is None:
                continue
            price = Fraction(to_units(target, self.sc.unit)) * (1 + self.impact[m])
            marks[m] = max(int(price), 1)
        return marks

    def _liquidate(self, account: str, block: int) -> int:
        """Liquidates ``account`` in its largest market (ADL markets: deleverages
        a bankrupt last position; PROFIT markets: claws it back, the keeper
        contract taking it over); returns the number of calls made."""
        k = self.keeper
        market = k.largest_market(account)
        if market is None:
            return 0
        calls = 0
        if self.sc.loss_policy == "ADL":
            calls = self._deleverage(account, market, block)
        elif self.sc.loss_policy == "PROFIT":
            calls = self._clawback(account, market, block)
        if calls == 0 or any(k.positions(account)):
            before = self._equities_if_bankrupt(account)
            events = k.liquidate(account, market)
            self._record(events, block)
            self._fairness(before, events, block)
            calls += 1
        k.forget(account)
        return calls

    def _keeper_run(self, marks: dict[int, int], targets: list[str], block: int) -> int:
        """The block's keeper transaction (``Keeper.run``): the new marks and the
        first of ``targets`` the clearing house lets the keeper contract
        liquidate at those marks. Returns the liquidations made (0 or 1)."""
        pending = self._pending() if targets and self.fairness is not None else None
        events = self.keeper.run(marks, targets)
        account = next((ev.account for ev in events or [] if ev.name == "PositionLiquidated"), None)
        if account is None:
            return 0
        self._record(events, block)
        if pending is not None and any(ev.name == "LossSocialized" for ev in events):
            self._fairness(self._before_run(pending, events), events, block)
        self.keeper.forget(account)
        return 1

    def _pending(self) -> dict[str, int]:
        """Every account's pending charges (EQUITY and OPEN_INTEREST), which the marks do not move."""
        accounts = self._accounts()
        rows = self.engine.calls([(self.d.lens, "charges", (a,)) for a in accounts])
        return {a: row[1] + row[2] for a, row in zip(accounts, rows)}  # Charges.loss_charge + .funding

    def _before_run(self, pending: dict[str, int], events: list[Event]) -> dict[str, int]:
        """Each account's equity at the new marks just before the keeper's
        liquidation, which ran in the transaction that pushed them: its equity
        now plus what the transaction charged it (the growth of its pending
        charges, and what it booked of them: the taker is settled first), less
        the taker's reward."""
        now = self._pending()
        accounts = list(now)
        change = {ev.liquidator: -ev.liquidator_reward for ev in events if ev.name == "PositionLiquidated"}
        for ev in events:
            if ev.name in ("LossSettled", "FundingSettled"):
                change[ev.account] = change.get(ev.account, 0) + (ev.charge if ev.name == "LossSettled" else ev.amount)
        return {a: equity + now[a] - pending[a] + change.get(a, 0)
                for a, equity in zip(accounts, self._read_equities(accounts))}

    def _deleverage(self, account: str, market: int, block: int) -> int:
        """ADL of a bankrupt account's last position when the vault cannot cover
        it: candidates from the queue, 50 per call, until closed or none is
        left (the liquidator then takes the rest at the mark). Returns the calls."""
        k = self.keeper
        ranked = k.adl_candidates(account, market, k.holders | {self.roles.market_maker.address, self.liquidator})
        calls = 0
        for i in range(0, len(ranked), MAX_CANDIDATES):
            before = self._equities_if_bankrupt(account)
            events = k.deleverage(account, market, ranked[i : i + MAX_CANDIDATES])
            calls += 1
            self._record(events, block)
            run = self.records["adl_runs"][-1]
            run["candidates"] = ranked[i : i + MAX_CANDIDATES]
            # what the fills collected beyond R (the bankruptcy price's rounding)
            fills = [f for f in self.records["deleveraged"] if f["tx"] == run["tx"]]
            run["surplus"] = sum(f["charge"] for f in fills) - run["residual"] if run["remaining"] == 0 else 0
            self._fairness(before, events, block)
            if next(ev for ev in events if ev.name == "DeleverageRun").args["remaining"] == 0:
                break
        return calls

    def _clawback(self, account: str, market: int, block: int) -> int:
        """PROFIT: when the vault cannot cover a bankrupt account's last
        position, its residual is charged to the accounts in profit there
        (``Keeper.clawback_candidates``) and the keeper contract takes the
        position over, in one transaction. Returns the calls."""
        k = self.keeper
        candidates = k.clawback_candidates(account, market, k.holders | {self.roles.market_maker.address, self.liquidator})
        if not candidates:
            return 0
        before = self._equities_if_bankrupt(account)
        events = k.clawback(account, market, candidates)
        self._record(events, block)
        self._fairness(before, events, block)
        return 1

    def _accounts(self) -> list[str]:
        r = self.roles
        return [t.address for t in self.traders] + [r.market_maker.address, self.liquidator]

    def _equities_if_bankrupt(self, account: str) -> dict[str, int] | None:
        """Before a liquidation that may socialize (the account's equity is
        negative): every account's equity. Within a block the marks stand
        still, so the last socialization's reading is reused for the accounts
        no transaction has touched since."""
        if self.fairness is None or self.d.view("health", account)[0] >= 0:
            return None
        known, block = self._equities
        stale = [a for a in self._accounts() if block != len(self.blocks) or a not in known or a in self._touched]
        known.update(zip(stale, self._read_equities(stale)))
        self._equities, self._touched = (known, len(self.blocks)), set()
        return dict(known)

    def _read_equities(self, accounts: list[str]) -> list[int]:
        """The lens's ``equities``, 1,000 accounts per call."""
        n = LENS_MAX_ACCOUNTS
        calls = [(self.d.lens, "equities", (accounts[i : i + n],)) for i in range(0, len(accounts), n)]
        return [e for part in self.engine.calls(calls) for e in part]

    def _fairness(self, before: dict[str, int] | None, events: list[Event], block: int) -> None:
        """Records, for the socialization (or ADL run) in ``events``, each paying
        account's equity just before and its share as the chain booked it: for
        EQUITY and OPEN_INTEREST what its equity lost in the transaction (no
        funding runs in a cascade, and the marks stand still within a block),
        for ADL what its fill cost beyond the mark."""
        if before is None:
            return
        social = next((ev for ev in events if ev.name in ("LossSocialized", "DeleverageRun", "ClawbackRun")), None)
        if social is None:
            return
        shares: dict[str, int] = {}
        if social.name == "ClawbackRun":
            shares = {ev.payer: ev.amount for ev in events if ev.name == "ProfitCharged" and ev.amount > 0}
        elif social.name == "DeleverageRun":
            for ev in events:
                if ev.name == "Deleveraged":
                    shares[ev.counterparty] = shares.get(ev.counterparty, 0) + adl_charge(ev)
        else:
            # The taker's equity also rose by its reward; the bankrupt account pays nothing.
            reward = {ev.liquidator: ev.liquidator_reward for ev in events if ev.name == "PositionLiquidated"}
            accounts = [a for a in before if a != social.account]
            after = self._read_equities(accounts)
            shares = {a: before[a] - now + reward.get(a, 0) for a, now in zip(accounts, after)}
            shares = {a: s for a, s in shares.items() if s > 0}
            self._equities = (dict(zip(accounts, after)), len(self.blocks))
            self._touched = {social.account}
        self.fairness.append({
            "block": block, "market": social.market, "event": social.name,
            "accounts": [[a, before[a], s] for a, s in shares.items() if a in before],
        })

    def _record(self, events: list[Event], block: int) -> None:
        """Keeps what a liquidation or deleveraging (the last transaction sent) emitted."""
        tx = self.engine.tx_count - 1 - self._tx0
        for log, ev in enumerate(events):
            if ev.name == "Deleveraged":
                self._touched |= {ev.account, ev.counterparty}
                rec = event_record(ev, block, tx, log)
                rec["charge"] = adl_charge(ev)
                self.records["deleveraged"].append(rec)
                self.keeper.forget(ev.counterparty)
            elif ev.name == "DeleverageRun":
                self.records["adl_runs"].append(event_record(ev, block, tx, log))
            elif ev.name == "ProfitCharged":
                self._touched |= {ev.account, ev.payer}
                self.records["clawbacks"].append(event_record(ev, block, tx, log))
                self.keeper.forget(ev.payer)
            elif ev.name == "ClawbackRun":
                self.records["clawback_runs"].append(event_record(ev, block, tx, log))
            elif ev.name == "CandidateSkipped":
                rec = event_record(ev, block, tx, log)
                rec["reason"] = ADL_SKIP.get(ev.reason, str(ev.reason))
                self.records["adl_skipped"].append(rec)
            elif ev.name == "PositionLiquidated":
                self._touched |= {ev.account, ev.liquidator}
                rec = event_record(ev, block, tx, log)
                self.records["liquidations"].append(rec)
                self.liq_count[ev.account] = self.liq_count.get(ev.account, 0) + 1
                notional = Fraction(abs(ev.size) * ev.price, 10**18 * self.sc.unit)
                mk = self.sc.markets[ev.market]
                move = Fraction(str(mk.impact_bps)) / 10_000 * notional / Fraction(str(mk.impact_depth))
                # A liquidated long (size taken over > 0 by the liquidator) is sold: the mark falls.
                self.impact[ev.market] += -move if ev.size > 0 else move
            elif ev.name == "AccountBankrupt":
                self.records["bankruptcies"].append(event_record(ev, block, tx, log))
            elif ev.name == "LossSocialized":
                self.records["socializations"].append(event_record(ev, block, tx, log))
                self.keeper.watch.socialized(ev)
            elif ev.name == "ResidualRecorded":
                self.records["residuals"].append(event_record(ev, block, tx, log))
            else:
                self._settled(ev, block, tx, log)

    def play(self) -> None:
        sc, d, e = self.sc, self.d, self.engine
        self._tx0 = e.tx_count  # events' tx ordinals count from here (the same on every engine)
        points = [path_points(m.path, m.price) for m in sc.markets]
        length = max(len(p) for p in points)
        k = self.keeper
        per_block = min(sc.keeper.liquidations_per_block, sc.keeper.gas_budget // sc.keeper.gas_per_liquidation)
        queue: dict[str, int] = {}  # account -> block it is due
        total = length + sc.keeper.settle_blocks
        for block in range(total):
            marks = self._marks(block, points)
            k.open_block(marks)
            targets = []  # under ADL and PROFIT the deleverager comes first: the marks go alone
            if per_block and sc.loss_policy not in ("ADL", "PROFIT"):
                targets = k.targets([a for a, due in queue.items() if due <= block], sc.keeper.delay_blocks)
            done = self._keeper_run(marks, targets, block)
            found = k.scan()
            if block >= length and not queue and not found and not done:
                break  # the path is over and the keeper has nothing left to do
            for a in found:
                queue.setdefault(a, block + sc.keeper.delay_blocks)
            skipped = 0
            for a in sorted((a for a, due in queue.items() if due <= block), key=lambda a: self.index[a]):
                while done < per_block and d.view("is_liquidatable", a):
                    done += self._liquidate(a, block)
                if done >= per_block:
                    break
                queue.pop(a)
                if not self.liq_count.get(a):
                    skipped += 1
            *states, vault_assets, bad_debt = e.calls(
                [(d.lens, "markets", (m,)) for m in range(len(sc.markets))]
                + [(d.vault, "totalAssets", ()), (d.clearing_house, "bad_debt", ())])
            self.blocks.append(
                {
                    "block": block,
                    "marks": [k.marks[m] for m in range(len(sc.markets))],
                    "open_interest": [st[4] for st in states],  # MarketState.long_open_interest
                    "oracle_updated": sorted(marks),
                    "liquidations": done,
                    "queued": len(queue),
                    "vault_assets": vault_assets,
                    "bad_debt": bad_debt,
                    "ledger": d.ledger(),  # the clearing house's aggregates and token balance
                }
            )
            self.progress("cascade", block + 1, total)

    def settle(self) -> list[str]:
        """Books every account's pending charges, each in its own transaction (events per account)."""
        d, r = self.d, self.roles
        accounts = self._accounts() + [d.vault]
        for i in range(0, len(accounts), CHUNK):
            logs = self.engine.send([d.tx(r.keeper, d.clearing_house, "settle_funding", a) for a in accounts[i : i + CHUNK]])
            first = self.engine.tx_count - len(logs) - self._tx0
            for j, evs in enumerate(logs):
                for log, ev in enumerate(evs):
                    self._settled(ev, len(self.blocks), first + j, log)
        return accounts

    def _settled(self, ev: Event, block: int, tx: int, log: int) -> None:
        """Records a charge booked into an account (in a liquidation or the final settlement)."""
        if ev.name in ("LossSettled", "FundingSettled"):
            rec = event_record(ev, block, tx, log)
            rec["event"] = ev.name
            self.records["settlements"].append(rec)

    # -- results
    def collect(self, accounts: list[str]) -> tuple[list[AccountResult], dict[str, str]]:
        d, e, sc = self.d, self.engine, self.sc
        ch, n = d.clearing_house, len(sc.markets)
        charged: dict[str, int] = {}
        for s in self.records["settlements"]:
            amount = s["charge"] if s["event"] == "LossSettled" else s["amount"]
            charged[s["account"]] = charged.get(s["account"], 0) + amount
        for f in self.records["deleveraged"]:
            charged[f["counterparty"]] = charged.get(f["counterparty"], 0) + f["charge"]
        for f in self.records["clawbacks"]:
            charged[f["payer"]] = charged.get(f["payer"], 0) + f["amount"]
        bankrupt = {b["account"] for b in self.records["bankruptcies"]}
        results = []
        views = []
        for a in accounts:
            views += [(d.lens, "equity", (a,)), (ch, "collateral", (a,))] + [(ch, "positions", (a, m)) for m in range(n)]
        values = e.calls(views)
        width = 2 + n
        for j, a in enumerate(accounts):
            v = values[j * width : (j + 1) * width]
            results.append(
                AccountResult(
                    index=self.index.get(a, -3),
                    address=a,
                    deposit=self.deposits.get(a, 0),
                    equity=v[0],
                    collateral=v[1],
                    sizes=[p[0] for p in v[2:]],
                    liquidations=self.liq_count.get(a, 0),
                    bankrupt=a in bankrupt,
                    charged=charged.get(a, 0),
                )
            )
        return results, self.check(results)

    def check(self, results: list[AccountResult]) -> dict[str, str]:
        """The invariants of a finished cascade; each "ok" or what failed."""
        d = self.d
        led = d.ledger()
        inv = {}
        gap = d.ledger_gap()
        inv["conservation"] = "ok" if gap == 0 else f"ledger identity off by {gap} units"
        total = sum(a.collateral for a in results)
        inv["aggregates"] = "ok" if total == led["total_collateral"] else f"sum of collateral {total} != total_collateral {led['total_collateral']}"
        # ADL runs that closed the position have their residual in the fills' charges.
        booked = sum(s["booked"] for s in self.records["socializations"])
        closed = [run for run in self.records["adl_runs"] if run["remaining"] == 0]
        booked += sum(run["residual"] for run in closed)
        booked += sum(run["charged"] for run in self.records["clawback_runs"])  # PROFIT: paid in its transaction, exactly
        # What solvent accounts paid beyond the residual for the negative
        # shares withheld went to the insurance fees, not to the residual.
        collected = sum(a.charged for a in results) - withheld(self.records["settlements"])
        # Both sides: at least what was socialized, at most that plus the
        # documented rounding (docs/loss-policies.md): under one unit per
        # settled charge or funding payment, two per socialization (the + 1
        # of EQUITY's rate, the ceiling of a per-contract charge), and per
        # closed ADL run one per fill and per contract of the price's ceiling.
        fills = {}
        for f in self.records["deleveraged"]:
            fills[f["account"], f["block"]] = fills.get((f["account"], f["block"]), 0) + 1
        dust = len(self.records["settlements"]) + 2 * len(self.records["socializations"])
        dust += sum(fills.get((run["account"], run["block"]), 0) + -(-run["closed"] // 10**18) + 1 for run in closed)
        if collected < booked or led["loss_receivable"] > 0 or led["funding_pool"] < 0:
            inv["completeness"] = (f"charged {collected} < socialized {booked} (loss_receivable "
                                   f"{led['loss_receivable']}, funding_pool {led['funding_pool']})")
        elif collected > booked + dust:
            inv["completeness"] = f"charged {collected} > socialized {booked} + rounding bound {dust}: overcharged"
        else:
            inv["completeness"] = "ok"
        negative = [a.address for a in results if not any(a.sizes) and a.collateral < 0]
        inv["no_negative_accounts"] = "ok" if not negative else f"{len(negative)} accounts below zero: {negative[:3]}"
        left = self.keeper.scan(exact=True)
        inv["keeper_swept"] = "ok" if not left else f"{len(left)} accounts still liquidatable: {left[:3]}"
        return inv

    def run(self) -> CascadeResult:
        t0 = time.perf_counter()
        self.setup()
        t1 = time.perf_counter()
        self.play()
        t2 = time.perf_counter()
        accounts = self.settle()
        results, invariants = self.collect(accounts)
        t3 = time.perf_counter()
        return CascadeResult(
            scenario=self.sc.name,
            seed=self.sc.seed,
            backend=self.engine.name,
            policy=self.sc.loss_policy,
            decimals=self.sc.decimals,
            blocks=self.blocks,
            liquidations=self.records["liquidations"],
            bankruptcies=self.records["bankruptcies"],
            socializations=self.records["socializations"],
            residuals_recorded=self.records["residuals"],
            settlements=self.records["settlements"],
            deleveraged=self.records["deleveraged"],
            adl_runs=self.records["adl_runs"],
            accounts=results,
            invariants=invariants,
            transactions=self.engine.tx_count,
            market_names=[m.name for m in self.sc.markets],
            parameters=self.sc.model_dump(mode="json"),
            openings=self.records["openings"],
            adl_skipped=self.records["adl_skipped"],
            clawbacks=self.records["clawbacks"],
            clawback_runs=self.records["clawback_runs"],
            fairness=self.fairness or [],
            timings={"setup": round(t1 - t0, 3), "cascade": round(t2 - t1, 3), "settle": round(t3 - t2, 3), "total": round(t3 - t0, 3)},
        )


def run_cascade(sc: Scenario, engine: Engine | None = None, progress: Callable[[str, int, int], None] | None = None) -> CascadeResult:
    """Runs ``sc`` on ``engine`` (default: a fresh revm engine, as the CLI and the plugin)."""
    if engine is None:
        from perpclear.engine import RevmEngine

        engine = RevmEngine()
    return Cascade(sc, engine, progress).run()
