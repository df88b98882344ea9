"""The audit: rebuild every loss distribution from chain logs and check it.

``audit(records, final)`` takes the decoded logs of one deployment (token,
oracle, vault, clearing house, order book), in chain order, and the final
views, and replays everything in the exact reference model
(``perpclear.model.ClearingModel``): markets and their parameters, vault
deposits, margin deposits and withdrawals, fills, marks, funding rates,
liquidations, settlements, policy changes. Every liquidation, insurance draw,
residual and socialization the chain logged is compared with what the model
computes, and each guarantee of the brief becomes one verdict row:

- ``replay``: fills and liquidations (size, price, penalty, rewards) equal the model's;
- ``waterfall``: each bankruptcy's deficit, insurance draw and residual equal the model's;
- ``atomic``: each residual is socialized or recorded in the bankruptcy's own
  transaction (no separate resolve step to run ahead of);
- ``socialization``: the policy's placement is the model's: the same charges
  in the same order, and each ``LossSocialized`` is the model's (booked amount, basis
  within a few units of the exact D, rate and index move consistent with its
  own basis to the unit);
- ``adl``: each ``deleverage`` call: the bankrupt account's equity, the
  insurance and R as the model has them, the bankruptcy price within its
  formula, every candidate's rank and skip reason, every fill's size and price,
  and no account the deleverager would have taken at a higher rank than a
  filled one passed over (the model knows every position at that block);
- ``profit``: each ``clawback`` call (PROFIT): the bankrupt account's equity,
  the insurance and R as the model has them, every payer's counted profit and
  charge to the unit, the skip reasons, and no account in profit at that block
  left out of the run (the model knows every position);
- ``charges``: every account's settled charges, and the negative shares withheld
  from it for the insurance fees (no account gains from a socialization), equal
  the model's within one unit per settlement;
- ``completeness``: booked − settled (charges less withheld shares) equals the unsettled ``loss_receivable``; no
  bad debt that the logs do not explain;
- ``conservation``: the ledger identity at the last block, and in the model.

Each failure names the event (name, block, transaction) and what differs.
``fetch_records`` reads the logs through the engine's ``logs`` verb, on any engine:
a node (``eth_getLogs``) or an in-process one (the logs of the transactions it ran).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from perpclear.deployment import CONTRACT_NAMES
from perpclear.engine import Engine, Event, Record
from perpclear.model import ClearingModel, MarketParams, ModelError, ceil
from perpclear.units import (
    EQUITY_SCALE, FUNDING_SCALE, MAX_INDEX, POLICY_EQUITY, POLICY_OPEN_INTEREST, WAD, equity_scale_after,
)

CHECKS = ("replay", "waterfall", "atomic", "socialization", "adl", "profit", "charges", "completeness", "conservation")


@dataclass
class Verdict:
    checked: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CHECKS})
    failures: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CHECKS})
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.failures.values())

    def check(self, name: str, good: bool, message: str) -> None:
        self.checked[name] += 1
        if not good:
            self.failures[name].append(message)

    def rows(self) -> list[dict]:
        return [
            {"guarantee": c, "checked": self.checked[c], "result": "ok" if not self.failures[c] else f"FAILED ({len(self.failures[c])})",
             "first failure": self.failures[c][0] if self.failures[c] else ""}
            for c in CHECKS
        ]


def fetch_records(engine: Engine, addresses: dict[str, str], from_block: int = 0) -> list[Record]:
    """Every log of the deployment's contracts from ``from_block``, decoded, in chain order."""
    for role, name in CONTRACT_NAMES.items():
        engine.attach(name, addresses[role])
    return engine.logs([addresses[r] for r in CONTRACT_NAMES], from_block)


def final_views(engine: Any, addresses: dict[str, str], accounts: list[str]) -> dict:
    ch = addresses["clearing_house"]
    names = ["bad_debt", "loss_receivable", "total_collateral", "total_open_notional", "funding_pool", "protocol_fees", "insurance_fees"]
    values = engine.calls([(ch, n, ()) for n in names] + [(addresses["token"], "balanceOf", (ch,))])
    views = dict(zip(names, values))
    views["balance"] = values[-1]
    views["collateral"] = dict(zip(accounts, engine.calls([(ch, "collateral", (a,)) for a in accounts])))
    return views


class _Replay:
    def __init__(self, addresses: dict[str, str], verdict: Verdict):
        self.a = addresses
        self.v = verdict
        self.m = ClearingModel()
        self.prices: dict[int, int] = {}
        self.params: dict[int, MarketParams] = {}
        self.charged_chain: dict[str, int] = {}
        self.withheld_chain: dict[str, int] = {}
        self.settlements: dict[str, int] = {}
        self.booked = 0
        self.settled = 0
        self.residual_recorded = 0
        self.floors = 0  # operations that floor into the EQUITY basis H (position changes)
        self.keepers: set[str] = set()  # the clearing house's KeeperSet: they alone take bankrupt ADL and PROFIT positions

    # one transaction at a time: its records in log order
    def tx(self, recs: list[Record]) -> None:
        m = self.m
        ts = recs[0].timestamp
        if ts > m.now:
            m.set_time(ts)
        names = [r.name for r in recs]
        for r in recs:
            e = r.event
            if r.name == "LossSettled":
                self.charged_chain[e.account] = self.charged_chain.get(e.account, 0) + e.charge
                self.withheld_chain[e.account] = self.withheld_chain.get(e.account, 0) + e.to_insurance
                self.settlements[e.account] = self.settlements.get(e.account, 0) + 1
                self.settled += e.charge - e.to_insurance
            elif r.name == "LossSocialized":
                self.booked += e.booked if e.loss_policy == POLICY_EQUITY else 0
            elif r.name == "ResidualRecorded":
                self.residual_recorded += e.residual
            elif r.name == "PositionChanged":
                self.floors += 1
        for r in recs:
            if r.name == "MarketAdded" and r.event.address == self.a["oracle"]:
                self.prices[r.event.market] = r.event.price
        # The clearing house's own MarketAdded is followed by MarketParamsSet in the same transaction.
        if "MarketParamsSet" in names:
            p = next(r.event for r in recs if r.name == "MarketParamsSet")
            params = MarketParams(*p.params)
            added = next((r.event for r in recs if r.name == "MarketAdded" and r.event.address == self.a["clearing_house"]), None)
            if added is not None:
                m.add_market(params, self.prices[added.market], added.loss_policy)
            else:
                m.markets[p.market].params = params
        if "DeleverageRun" in names:
            self._deleverage(recs)
            return
        if "ClawbackRun" in names:
            # The keeper contract's clawback takes the position over in the same transaction.
            self._clawback(recs)
            after = recs[names.index("ClawbackRun") + 1 :]
            for r in after:
                self._one(r, after)
            return
        for r in recs:
            self._one(r, recs)

    def _deleverage(self, recs: list[Record]) -> None:
        """One ``deleverage`` call: its run summary against the model's state
        before it, the bankruptcy price against its formula, then each candidate
        (rank, skip reason) and fill in order, with the waterfall if it closes."""
        m, v = self.m, self.v
        run_rec = next(r for r in recs if r.name == "DeleverageRun")
        run = run_rec.event
        steps = [r for r in recs if r.name in ("Deleveraged", "CandidateSkipped")]
        mk = m.markets[run.market]
        size = m.position(run.account, run.market).size
        equity = m.health(run.account).equity
        cap = mk.params.max_insurance_draw
        insurance = min(m.vault_assets, cap) if cap else m.vault_assets
        got = (run.equity, run.insurance, run.residual, run.mark)
        want = (equity, insurance, -equity - insurance, mk.price)
        v.check("adl", got == want and size != 0, f"{run_rec.where()}: (equity, insurance, R, mark) {got} != model {want}")
        if size == 0:
            return
        # gap = ceil(R·WAD/|s|): the state's, whatever the candidates (a short's price floors at 1).
        gap = abs(run.price - run.mark)
        want_gap = ceil(Fraction(run.residual * WAD, abs(size)))
        v.check("adl", gap == want_gap or (size < 0 and run.price == 1),
                f"{run_rec.where()}: bankruptcy price {run.price} at mark {run.mark}: gap {gap} != ceil(R·WAD/|s|) {want_gap}")
        # Everyone on the other side the deleverager would have taken as the
        # run began, and at what rank: none may rank above a filled one.
        eligible = {}
        for (a, market), p in list(m.positions.items()):
            if market == run.market and p.size and (p.size > 0) != (size > 0):
                reason, _, rank = m.adl_candidate(run.account, a, run.market, abs(size), gap, None)
                if reason == 0:
                    eligible[a] = rank
        filled: dict[str, int] = {}
        remaining, last = abs(size), None
        try:
            for r in steps:
                e = r.event
                reason, amount, rank = m.adl_candidate(run.account, e.counterparty, run.market, remaining, gap, last)
                if r.name == "CandidateSkipped":
                    v.check("adl", e.reason == reason, f"{r.where()}: reason {e.reason} != model {reason}")
                    continue
                v.check("adl", (reason, e.size, e.rank, e.price) == (0, amount, rank, run.price),
                        f"{r.where()}: (skip, size, rank, price) {(0, e.size, e.rank, e.price)} != model {(reason, amount, rank, run.price)}")
                b = m.adl_fill(run.account, e.counterparty, run.market, e.size, e.price)
                last, remaining = rank, remaining - e.size
                filled[e.counterparty] = rank
                if b is not None:
                    logged = next((x for x in recs if x.name == "AccountBankrupt" and x.event.account == run.account), None)
                    got_b = (logged.event.deficit, logged.event.insurance_paid, logged.event.residual) if logged else None
                    v.check("waterfall", got_b == (b.deficit, b.insurance_paid, b.residual),
                            f"{run_rec.where()}: bankruptcy {got_b} != model {(b.deficit, b.insurance_paid, b.residual)}")
        except ModelError as exc:
            v.check("adl", False, f"{run_rec.where()}: the model refuses it: {exc}")
        v.check("adl", remaining == run.remaining, f"{run_rec.where()}: remaining {run.remaining} != model {remaining}")
        if filled:
            lowest = min(filled.values())
            passed = sorted((-rank, a) for a, rank in eligible.items() if a not in filled and rank > lowest)
            v.check("adl", not passed, f"{run_rec.where()}: passed over {passed[0][1] if passed else ''} "
                                       f"(rank {-passed[0][0] if passed else 0}) for a fill at rank {lowest}")

    def _clawback(self, recs: list[Record]) -> None:
        """One ``clawback`` call: its run summary and every payer's profit and
        charge against the model's clawback over the same candidates, and
        every account in profit at that block among the payers."""
        m, v = self.m, self.v
        run_rec = next(r for r in recs if r.name == "ClawbackRun")
        run = run_rec.event
        charged_recs = [r for r in recs if r.name == "ProfitCharged"]
        charged = [r.event for r in charged_recs]
        skipped = {r.event.counterparty: r.event.reason for r in recs if r.name == "CandidateSkipped"}
        in_profit = sorted(a for (a, market), p in list(m.positions.items())
                           if market == run.market and p.size and a != run.account
                           and min(m.pnl(a, market), m.health(a).equity) > 0)
        # The payers (logged in the candidates' order) and the candidates skipped
        # for what they hold (not for the list's order) are the run's candidates.
        candidates = sorted({e.payer for e in charged} | {a for a, why in skipped.items() if why in (1, 2)},
                            key=lambda a: int(a, 16))
        try:
            result = m.clawback(run.account, run.market, candidates or [run.account])
        except ModelError as exc:
            v.check("profit", False, f"{run_rec.where()}: the model refuses it: {exc}")
            return
        got = (run.equity, run.insurance, run.residual, run.profit, run.charged, run.mark)
        want = (result.equity, result.insurance, result.residual, result.total_profit,
                sum(result.charged.values()), result.mark)
        v.check("profit", got == want, f"{run_rec.where()}: (equity, insurance, R, P, charged, mark) {got} != model {want}")
        modelled = [(a, result.charged[a], p) for a, p in result.profits.items()]
        v.check("profit", len(charged) == len(modelled), f"{run_rec.where()}: {len(charged)} payers != model {len(modelled)}")
        for r, want in zip(charged_recs, modelled):
            got = (r.event.payer, r.event.amount, r.event.profit)
            v.check("profit", got == want, f"{r.where()}: (payer, charge, profit) {got} != model {want}")
        for a, why in result.skipped:
            if a in skipped:
                v.check("profit", skipped[a] == why, f"{run_rec.where()}: {a} skipped for {skipped[a]} != model {why}")
        passed = [a for a in in_profit if a not in result.profits]
        v.check("profit", not passed, f"{run_rec.where()}: passed over {passed[0] if passed else ''}, in profit "
                                      f"{min(m.pnl(passed[0], run.market), m.health(passed[0]).equity) if passed else 0}")

    def _one(self, r: Record, recs: list[Record]) -> None:
        m, v, e = self.m, self.v, r.event
        try:
            if r.name == "PriceUpdated":
                m.set_price(e.market, e.price)
            elif r.name == "KeeperSet" and e.address == self.a["clearing_house"]:
                (self.keepers.add if e.allowed else self.keepers.discard)(e.keeper)
            elif r.name == "LossPolicySet":
                m.markets[e.market].loss_policy = e.policy
            elif r.name == "Deposit" and e.address == self.a["vault"]:
                m.vault_assets += e.assets
            elif r.name == "Withdraw" and e.address == self.a["vault"]:
                m.vault_assets -= e.assets
            elif r.name == "Deposited":
                m.deposit(e.account, e.amount)
            elif r.name == "Withdrawn":
                m.withdraw(e.account, e.amount)
            elif r.name == "FundingRateSet":
                m.set_funding_rate(e.market, e.rate)
            elif r.name == "FeesSwept":
                m.sweep_fees()
            elif r.name == "OrderFilled":
                self._fill(r)
            elif r.name == "PositionLiquidated":
                self._liquidation(r, recs)
            elif r.name in ("LossSettled", "FundingSettled") and all(x.name in ("LossSettled", "FundingSettled") for x in recs):
                # A settle_funding transaction: it touches one account.
                if r is recs[0]:
                    m.touch(e.account)
            elif r.name in ("BackstopFunded", "BackstopWithdrawn"):
                v.notes.append(f"{r.where()}: backstop margin moves are not replayed")
        except ModelError as exc:
            v.check("replay", False, f"{r.where()}: the model refuses it: {exc}")

    def _fill(self, r: Record) -> None:
        m, v, e = self.m, self.v, r.event
        params = m.markets[e.market].params
        notional = e.size * e.price // 10**18
        maker_fee = ceil(Fraction(notional * params.maker_fee_bps, 10_000))
        maker = e.buyer if e.buyer_fee == maker_fee else e.seller
        fees = m.trade(e.buyer, e.seller, e.market, e.size, e.price, maker=maker)
        v.check("replay", tuple(fees) == (e.buyer_fee, e.seller_fee), f"{r.where()}: fees {(e.buyer_fee, e.seller_fee)} != model {tuple(fees)}")

    def _liquidation(self, r: Record, recs: list[Record]) -> None:
        m, v, e = self.m, self.v, r.event
        # The taker is the keeper itself, or the vault's margin account on a keeper's backstop call.
        keeper = e.liquidator in self.keepers or e.liquidator == self.a["vault"]
        liq = m.liquidate(e.account, e.market, abs(e.size), e.liquidator, keeper=keeper)
        got = (e.size, e.price, e.penalty, e.liquidator_reward, e.insurance_reward)
        want = (liq.size, liq.price, liq.penalty, liq.liquidator_reward, liq.insurance_reward)
        v.check("replay", got == want, f"{r.where()}: (size, price, penalty, rewards) {got} != model {want}")
        after = recs[recs.index(r) + 1 :]
        bankrupt = next((x for x in after if x.name == "AccountBankrupt" and x.event.account == e.account), None)
        b = liq.bankruptcy
        if bankrupt is None:
            v.check("waterfall", b is None, f"{r.where()}: the model finds a bankruptcy the chain did not log")
            return
        be = bankrupt.event
        if b is None:
            v.check("waterfall", False, f"{bankrupt.where()}: logged, but the model finds no bankruptcy")
            return
        got = (be.deficit, be.insurance_paid, be.residual)
        want = (b.deficit, b.insurance_paid, b.residual)
        v.check("waterfall", all(abs(x - y) <= 1 for x, y in zip(got, want)), f"{bankrupt.where()}: (deficit, insurance, residual) {got} != model {want}")
        if be.residual == 0:
            return
        # A policy's placement is booked as up to two charges, each a LossSocialized (side, then equity).
        socials = [x for x in after if x.name == "LossSocialized" and x.event.account == e.account]
        recorded = next((x for x in after if x.name == "ResidualRecorded" and x.event.account == e.account), None)
        placed = sum(x.event.booked for x in socials) + (recorded.event.residual if recorded else 0)
        placing = (socials or [recorded or bankrupt])[-1]
        v.check("atomic", placed == be.residual,
                f"{placing.where()}: places {placed} in the transaction of the bankruptcy, whose residual is {be.residual}")
        charges, model = [x.event.loss_policy for x in socials], [p.loss_policy for p in b.parts]
        if charges != model:
            v.check("socialization", False, f"{placing.where()}: charges by policy {charges} != model {model}")
            return
        for social, part in zip(socials, b.parts):
            self._socialization(social, part)

    def _socialization(self, r: Record, b: Any) -> None:
        v, e = self.v, r.event
        ok = e.loss_policy in (POLICY_EQUITY, POLICY_OPEN_INTEREST) and abs(e.booked - b.booked) <= 1
        msg = f"{r.where()}: booked {e.booked} != model {b.booked}"
        if ok and e.loss_policy == POLICY_EQUITY:
            expected_rate = ceil(Fraction((e.residual + 1) * EQUITY_SCALE, e.basis)) if e.basis > 0 else 0
            # The chain's D is the exact D less its floors: at most one unit per
            # account term, per position change and per settlement so far
            # (docs/loss-policies.md), never more, never less.
            tolerance = len(self.m.accounts()) + self.floors + sum(self.settlements.values()) + 2
            ok = -1 <= b.basis - e.basis <= tolerance and e.rate <= expected_rate
            ok = ok and (e.rate == expected_rate or e.booked < e.residual)  # capped rates book less
            ok = ok and e.index_after == equity_scale_after(e.index_before, e.rate)
            msg = (f"{r.where()}: basis {e.basis} vs model D {float(b.basis):.0f}, rate {e.rate} vs "
                   f"ceil((R+1)·1e36/basis) {expected_rate}, K {e.index_before} -> {e.index_after}")
        elif ok:
            # ceil(R·WAD²/OI), at most the mark and within ±MAX_INDEX of the charged side's index
            expected = ceil(Fraction(e.residual * FUNDING_SCALE, e.basis)) if e.basis else 0
            expected = min(expected, self.m.markets[e.market].price * WAD)
            if e.index_after < e.index_before:
                expected = min(expected, max(MAX_INDEX + e.index_before, 0))
            else:
                expected = min(expected, max(MAX_INDEX - e.index_before, 0))
            ok = e.basis == b.basis and e.rate == expected == b.rate
            ok = ok and abs(e.index_after - e.index_before) == e.rate
            msg = f"{r.where()}: open interest {e.basis} vs model {b.basis}, per contract {e.rate} vs {expected}"
        v.check("socialization", ok, msg)


def audit(records: list[Record], addresses: dict[str, str], final: dict) -> Verdict:
    """Replays ``records`` in the model and checks every guarantee; see the module docstring."""
    verdict = Verdict()
    replay = _Replay(addresses, verdict)
    i = 0
    while i < len(records):
        j = i
        while j < len(records) and records[j].tx == records[i].tx:
            j += 1
        replay.tx(records[i:j])
        i = j
    m = replay.m
    # Charges: the chain's settled EQUITY charges per account against the model's.
    for account in sorted(set(replay.charged_chain) | set(m.loss_charged)):
        chain, model = replay.charged_chain.get(account, 0), m.loss_charged.get(account, 0)
        verdict.check("charges", abs(chain - model) <= max(1, replay.settlements.get(account, 0)),
                      f"LossSettled of {account}: total {chain} != model {model}")
    # No account gains: a negative share goes to the insurance fees, as the model has it.
    for account in sorted(set(replay.withheld_chain) | set(m.loss_withheld)):
        chain, model = replay.withheld_chain.get(account, 0), m.loss_withheld.get(account, 0)
        verdict.check("charges", abs(chain - model) <= max(1, replay.settlements.get(account, 0)),
                      f"LossSettled of {account}: {chain} to insurance != model {model}")
    for account, value in final.get("collateral", {}).items():
        want = m.collateral.get(account, 0)
        verdict.check("charges", abs(value - want) <= max(1, replay.settlements.get(account, 0)),
                      f"collateral of {account}: chain {value} != model {want}")
    verdict.check("completeness", final["loss_receivable"] == replay.booked - replay.settled,
                  f"loss_receivable {final['loss_receivable']} != booked {replay.booked} - settled {replay.settled}")
    verdict.check("completeness", final["bad_debt"] == replay.residual_recorded,
                  f"bad_debt {final['bad_debt']} != residuals recorded {replay.residual_recorded}")
    lhs = final["balance"] + final["bad_debt"] + final["loss_receivable"]
    rhs = final["total_collateral"] - final["total_open_notional"] + final["funding_pool"] + final["protocol_fees"] + final["insurance_fees"]
    verdict.check("conservation", lhs == rhs, f"ledger identity off by {lhs - rhs} units at the last block")
    verdict.check("conservation", m.ledger_gap() == 0, f"the model's ledger is off by {m.ledger_gap()}")
    return verdict


def accounts_of(records: list[Record]) -> list[str]:
    seen = []
    for r in records:
        if r.name in ("Deposited", "PositionChanged") and r.event.account not in seen:
            seen.append(r.event.account)
    return seen


def run_audit(engine: Engine, addresses: dict[str, str], from_block: int = 0) -> tuple[Verdict, list[Record]]:
    records = fetch_records(engine, addresses, from_block)
    return audit(records, addresses, final_views(engine, addresses, accounts_of(records))), records


def doctored(records: list[Record], name: str, field_name: str, delta: int, nth: int = 0) -> list[Record]:
    """A copy of ``records`` with one field of the ``nth`` ``name`` event moved by ``delta`` (tests)."""
    out = copy.copy(records)
    hits = [i for i, r in enumerate(out) if r.name == name]
    i = hits[nth]
    r = out[i]
    args = dict(r.event.args)
    args[field_name] += delta
    out[i] = Record(Event(r.event.name, r.event.address, args), r.block, r.tx, r.index, r.timestamp)
    return out
