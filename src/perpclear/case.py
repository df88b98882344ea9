"""A case written by hand: named traders, whole-token amounts, any engine.

    from perpclear.case import Case

    case = Case(policy="EQUITY")                 # revm, 6 decimals, ETH-PERP at 2,000
    case.fund_vault(100)
    for name in ("A", "B", "C", "D"):
        case.deposit(name, 1_000 if name == "A" else 20_000)
    case.trade(buyer="A", seller="B", market="ETH-PERP", size=5, price=2_000)
    case.trade(buyer="D", seller="C", market="ETH-PERP", size=2, price=2_000)
    case.mark("ETH-PERP", 1_600)
    case.liquidate("A", by="C")
    print(case.table())                          # who paid what

Every call sends real transactions (signed orders, ERC-20 transfers) through
the same deployment as the cascades (``perpclear.cascade.deploy``) and returns
the decoded events. Amounts and prices are in whole tokens (``Decimal``-exact
strings or numbers), sizes in contracts; ``case.units(x)`` converts. The case
sets no funding rate, so every ``FundingSettled`` it sees is an OPEN_INTEREST
charge; ``charges()`` books every pending charge first (``settle_funding``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount

from perpclear.adl import queue
from perpclear.units import MAX_CANDIDATES
from perpclear.deployment import HUGE, Deployment, Roles, deploy, labelled_key
from perpclear.results import adl_charge
from perpclear.engine import IN_PROCESS, Engine, Event
from perpclear.model import WAD
from perpclear.scenario import Scenario


def exact_units(amount: float | str | Decimal, unit: int) -> int:
    """``amount`` (whole tokens or contracts) in units of 1/``unit``, exactly:
    ``"0.1"`` is one tenth; anything finer than one unit is refused."""
    value = Decimal(str(amount)) * unit
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is finer than one unit (1/{unit})")
    return int(value)


@dataclass(frozen=True)
class Charge:
    """What one account paid for other accounts' losses, in smallest units."""

    name: str
    equity: int = 0  # EQUITY: its share of the residual (LossSettled)
    open_interest: int = 0  # OPEN_INTEREST: its side's per-contract charge (FundingSettled)
    adl: int = 0  # ADL: closed at the bankruptcy price, beyond the mark (Deleveraged)
    profit: int = 0  # PROFIT: clawed back from its profit (ProfitCharged)

    @property
    def total(self) -> int:
        return self.equity + self.open_interest + self.adl + self.profit


class Case:
    """One fresh system on one engine, driven by name."""

    def __init__(self, policy: str = "EQUITY", *, engine: str | Engine = "revm", decimals: int = 6,
                 markets: dict[str, float] | None = None):
        """``markets``: name -> opening mark in whole tokens (default ETH-PERP at
        2,000), each with the default risk parameters (10 % initial, 5 %
        maintenance margin)."""
        markets = markets or {"ETH-PERP": 2_000}
        self.engine = IN_PROCESS[engine]() if isinstance(engine, str) else engine
        self.scenario = Scenario.model_validate({
            "name": "case", "decimals": decimals, "loss_policy": policy,
            "markets": [{"name": n, "price": p, "path": {"kind": "explicit", "prices": [p]}} for n, p in markets.items()],
            "traders": {"count": 1, "collateral": {"min": 1, "max": 1}, "leverage": {"min": 1, "max": 1}},
            "vault": {"assets": 0},
        })
        self.market_ids = {n: i for i, n in enumerate(markets)}
        self.roles = Roles()
        self.d: Deployment = deploy(self.engine, self.scenario, self.roles)
        self.accounts: dict[str, LocalAccount] = {}
        self.events: list[Event] = []

    # ------------------------------------------------------------ helpers

    def units(self, amount: float | str | Decimal) -> int:
        """Whole tokens -> smallest units (exact for decimal strings)."""
        return exact_units(amount, self.scenario.unit)

    def address(self, name: str) -> str:
        return self.account(name).address

    def account(self, name: str) -> LocalAccount:
        """The trader called ``name`` (a key derived from the name: devnets only)."""
        if name not in self.accounts:
            self.accounts[name] = labelled_key(f"case:{name}")
        return self.accounts[name]

    def market(self, name: str | int) -> int:
        if isinstance(name, int):
            return name
        if name not in self.market_ids:
            raise ValueError(f"unknown market {name!r} (markets: {', '.join(self.market_ids)})")
        return self.market_ids[name]

    def _send(self, *txs) -> list[Event]:
        return self._record([ev for evs in self.engine.send(list(txs)) for ev in evs])

    def _record(self, events: list[Event]) -> list[Event]:
        """Keeps ``events`` for ``charges()`` and returns them."""
        self.events += events
        return events

    # ------------------------------------------------------------ actions

    def deposit(self, name: str, amount: float | str) -> list[Event]:
        """Mints ``amount`` whole tokens to ``name`` and deposits them as margin."""
        before = len(self.events)
        self.d.fund([(self.account(name), self.units(amount))])
        return self.events[before:]

    def fund_vault(self, amount: float | str, backstop: float | str = 0) -> list[Event]:
        """An insurer deposits ``amount`` into the insurance vault; the vault's
        owner moves ``backstop`` of it into the vault's margin account, which
        takes positions over in backstop liquidations."""
        events = self.d.fund_vault(self.units(amount), self.units(backstop))
        self.events += events
        return events

    def trade(self, buyer: str, seller: str, market: str | int, size: float | str, price: float | str) -> list[Event]:
        """``buyer`` buys ``size`` contracts from ``seller`` at ``price`` (two signed orders, the buyer's the maker)."""
        size_base = exact_units(size, WAD)
        return self._send(self.d.order_pair(self.account(buyer), self.account(seller), self.market(market), size_base,
                                            self.units(price), self.d.next_nonce()))

    def mark(self, market: str | int, price: float | str) -> list[Event]:
        """The keeper pushes a new mark (through the keeper contract, liquidating nothing)."""
        return self.keeper_run({market: price})

    def keeper_run(self, marks: dict[str | int, float | str], liquidate: list[str] = (),
                   max_liquidations: int | None = None) -> list[Event]:
        """One transaction of the keeper contract: it pushes ``marks`` (market ->
        price), then liquidates the named traders in order, each once in its
        largest position (a trader without one: the first market), taking them
        over with its own margin (``fund_keeper``),
        until ``max_liquidations`` (default: all) succeeded. A trader the clearing
        house refuses is skipped with its reason (``TargetSkipped``). Nothing can
        come between the marks and the liquidations."""
        targets = [(self.address(n), self._market_of(n) if self._holds(n) else 0) for n in liquidate]
        return self._record(self.d.run_keeper({self.market(m): self.units(p) for m, p in marks.items()}, targets,
                                              len(targets) if max_liquidations is None else max_liquidations))

    def fund_keeper(self, amount: float | str) -> list[Event]:
        """The admin deposits ``amount`` as the keeper contract's margin."""
        events = self.d.fund_keeper(self.units(amount))
        self.events += events
        return events

    def liquidate(self, name: str, market: str | int | None = None, *, by: str | None = None, backstop: bool = False,
                  size: float | str | None = None) -> list[Event]:
        """Liquidates ``name`` in ``market`` (default: its only or largest
        position). The taker is the trader ``by``, or with ``backstop=True`` the
        vault's margin account (sent by the keeper); ``size`` in contracts
        (default: as much as the contract allows)."""
        if (by is None) == (not backstop):
            raise ValueError("liquidate: name the taker (by=...) or pass backstop=True")
        sender = self.roles.keeper if backstop else self.account(by)
        m = self._market_of(name) if market is None else self.market(market)
        amount = HUGE if size is None else exact_units(size, WAD)
        return self._send(self.d.tx(sender, self.d.clearing_house, "liquidate", self.address(name), m, amount, backstop))

    def deleverage(self, name: str, market: str | int | None = None, candidates: list[str] | None = None) -> list[Event]:
        """ADL of ``name``'s last (bankrupt) position, by the keeper: against the
        named ``candidates`` in that order, or by default every named trader in
        the deleverager's queue (highest rank first)."""
        d = self.d
        m = self._market_of(name) if market is None else self.market(market)
        if candidates is None:
            size = self.engine.call(d.clearing_house, "positions", self.address(name), m)[0]
            everyone = sorted(a.address for a in self.accounts.values())
            ranked = [a for a, _ in queue(self.engine, d.clearing_house, d.deleverager, everyone, m, size < 0)]
        else:
            ranked = [self.address(c) for c in candidates]
        return self._send(self.d.tx(self.roles.liquidator, d.deleverager, "deleverage", self.address(name), m,
                                    ranked[:MAX_CANDIDATES]))

    def clawback(self, name: str, market: str | int | None = None, candidates: list[str] | None = None) -> list[Event]:
        """PROFIT: ``name``'s residual charged to the accounts in profit among
        the named ``candidates``, by default every named trader (in address
        order, as the contract takes them), and its position taken over at the
        mark by the keeper contract, in one transaction (its margin comes
        from ``fund_keeper``)."""
        m = self._market_of(name) if market is None else self.market(market)
        names = candidates if candidates is not None else [n for n in self.accounts if n != name]
        listed = sorted((self.address(n) for n in names), key=lambda a: int(a, 16))
        return self._send(self.d.clawback_tx(self.address(name), m, listed))

    def _holds(self, name: str) -> bool:
        return self.d.view("open_markets", self.address(name)) != 0

    def _market_of(self, name: str) -> int:
        sizes = self.engine.calls([(self.d.clearing_house, "positions", (self.address(name), m)) for m in self.market_ids.values()])
        prices = self.engine.calls([(self.d.oracle, "last_price", (m,)) for m in self.market_ids.values()])
        held = [(abs(p[0]) * q[0], m) for m, (p, q) in enumerate(zip(sizes, prices)) if p[0]]
        if not held:
            raise ValueError(f"{name} holds no position")
        return max(held)[1]

    # ------------------------------------------------------------ answers

    def view(self, fn: str, *args: Any) -> Any:
        """A view of the clearing house or its lens, names resolved: ``view("equity", "A")``."""
        return self.d.view(fn, *(self.address(a) if isinstance(a, str) and a in self.accounts else a for a in args))

    def equity(self, name: str) -> int:
        return self.view("equity", name)

    def charges(self) -> list[Charge]:
        """Who paid what for others' losses, per policy, in smallest units: every
        named trader's pending charges are booked first. Traders that paid
        nothing are left out; the largest payer comes first."""
        self._send(*(self.d.tx(self.roles.keeper, self.d.clearing_house, "settle_funding", a.address)
                     for a in self.accounts.values()))
        by_address = {a.address: n for n, a in self.accounts.items()}
        paid: dict[str, dict[str, int]] = {}
        for ev in self.events:
            if ev.name == "LossSettled":
                who, kind, amount = ev.args["account"], "equity", ev.args["charge"]
            elif ev.name == "FundingSettled":
                who, kind, amount = ev.args["account"], "open_interest", ev.args["amount"]
            elif ev.name == "Deleveraged":
                who, kind, amount = ev.args["counterparty"], "adl", adl_charge(ev)
            elif ev.name == "ProfitCharged":
                who, kind, amount = ev.args["payer"], "profit", ev.args["amount"]
            else:
                continue
            if who in by_address:
                row = paid.setdefault(by_address[who], {})
                row[kind] = row.get(kind, 0) + amount
        rows = [Charge(name, **kinds) for name, kinds in paid.items()]
        return sorted((r for r in rows if r.total), key=lambda r: (-r.total, r.name))

    def table(self) -> str:
        """``charges()`` as a text table in whole tokens, with each payer's equity now."""
        u = self.scenario.unit
        lines = [f"{'account':<10}{'EQUITY':>14}{'OPEN_INTEREST':>16}{'ADL':>14}{'PROFIT':>14}{'total':>14}"
                 f"{'equity now':>16}"]
        for c in self.charges():
            lines.append(f"{c.name:<10}{c.equity / u:>14,.6f}{c.open_interest / u:>16,.6f}{c.adl / u:>14,.6f}"
                         f"{c.profit / u:>14,.6f}{c.total / u:>14,.6f}{self.equity(c.name) / u:>16,.2f}")
        return "\n".join(lines)
