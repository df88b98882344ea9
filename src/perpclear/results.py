"""What a cascade returns: ``CascadeResult`` and its parts, plain data (JSON as is)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from perpclear.engine import Event

@dataclass
class AccountResult:
    index: int  # trader index; -1 market maker, -2 liquidator
    address: str
    deposit: int
    equity: int  # final, after settlement
    collateral: int
    sizes: list[int]
    liquidations: int
    bankrupt: bool
    charged: int  # EQUITY charges + OPEN_INTEREST index charges settled at the end + ADL and PROFIT charges


@dataclass
class CascadeResult:
    scenario: str
    seed: int
    backend: str
    policy: str
    decimals: int
    blocks: list[dict]  # per block: marks, liquidations, vault assets, bad debt
    liquidations: list[dict]
    bankruptcies: list[dict]
    socializations: list[dict]
    residuals_recorded: list[dict]
    settlements: list[dict]
    deleveraged: list[dict]  # ADL fills, each with the counterparty's charge beyond the mark
    adl_runs: list[dict]  # one per deleverage call: residual, bankruptcy price, what stayed open
    accounts: list[AccountResult]
    invariants: dict[str, str]  # name -> "ok" or what failed
    transactions: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    market_names: list[str] = field(default_factory=list)
    # What an auditor needs to replay the run without the chain: the scenario,
    # the opening fills (OrderFilled: size, price, fees), and the ADL
    # candidates skipped (with the reason); adl_runs carry the candidates
    # passed and the surplus, every event its tx and log index.
    parameters: dict = field(default_factory=dict)
    openings: list[dict] = field(default_factory=list)
    adl_skipped: list[dict] = field(default_factory=list)
    # PROFIT: each payer of a clawback (ProfitCharged: amount, profit counted)
    # and one entry per clawback call (ClawbackRun: R, P, what was charged).
    clawbacks: list[dict] = field(default_factory=list)
    clawback_runs: list[dict] = field(default_factory=list)
    # One entry per socialization (and per ADL run or clawback): the block, market and
    # policy, and [account, equity just before, share] of every account that
    # paid. Empty above FAIRNESS_MAX_TRADERS traders.
    fairness: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v == "ok" for v in self.invariants.values())

    def outcome(self) -> dict:
        """Everything but the engine's name and the timings: equal across engines for one scenario."""
        d = asdict(self)
        for k in ("backend", "timings", "transactions"):
            d.pop(k)
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(asdict(self), **kw)

    def totals(self) -> dict:
        return {
            "liquidations": len(self.liquidations),
            "bankruptcies": len(self.bankruptcies),
            "insurance_paid": sum(b["insurance_paid"] for b in self.bankruptcies),
            "residual": sum(b["residual"] for b in self.bankruptcies),
            "socialized": sum(s["booked"] for s in self.socializations),
            "deleveraged": len(self.deleveraged),
            "adl_residual": sum(run["residual"] for run in self.adl_runs if run["remaining"] == 0),
            "clawed_back": sum(run["charged"] for run in self.clawback_runs),
            "bad_debt": sum(r["residual"] for r in self.residuals_recorded),
            "charged": sum(a.charged for a in self.accounts),
            "accounts_charged": sum(1 for a in self.accounts if a.charged > 0),
            "withheld_to_insurance": withheld(self.settlements),
        }


def withheld(settlements: list[dict]) -> int:
    """EQUITY: the negative shares withheld from underwater accounts, paid to the insurance fees."""
    return sum(s.get("to_insurance", 0) for s in settlements if s["event"] == "LossSettled")


def adl_charge(ev: Event) -> int:
    """What a ``Deleveraged`` counterparty paid beyond closing at the mark,
    rounded up (the fill's notional is rounded for the bankrupt account)."""
    return -(-ev.args["size"] * abs(ev.args["price"] - ev.args["mark"]) // 10**18)


def event_record(ev: Event, block: int, tx: int, log: int) -> dict:
    """An event as a result records it: its fields, the cascade block, and where it
    was logged: ``tx``, the transaction's ordinal from the start of the play (for
    the opening fills, among them), ``log`` its place in that transaction's logs."""
    d = {"block": block, "tx": tx, "log": log}
    for k, v in ev.args.items():
        d[k] = v if not isinstance(v, bytes) else "0x" + v.hex()
    return d
