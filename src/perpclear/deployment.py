"""One system deployed on one engine: its keys, its contracts and the calls to drive it.

``deploy(engine, scenario)`` deploys and wires the token, oracle, insurance
vault, clearing house, order book, loss policy contracts, lens and keeper for a scenario
and returns a ``Deployment``: the addresses, the ``Roles`` that operate them
and helpers that build, sign and send the usual transactions (fund, open, set
marks, liquidate, deleverage) and read the views. Marks and liquidations go
through the keeper contract (``Keeper.vy``), whose operator is the keeper
role: ``run_keeper`` pushes marks and liquidates in one transaction. ``Deployment.attach`` drives
a system deployed earlier (``ape run deploy`` writes its manifest).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from perpclear.engine import Engine, EngineError, Event, Tx, abi_decode
from perpclear.model import MarketParams
from perpclear.orders import Order, sign_order
from perpclear.scenario import Scenario, to_units
from perpclear.units import MAX_SIZE, POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_PROFIT

HUGE = MAX_SIZE  # "the whole position": the contract clamps a liquidation request
EXPIRY = 2**40  # orders in a cascade do not expire
ORACLE_MAX_AGE = 10**9  # no staleness in a cascade: blocks are logical steps
VAULT_COOLDOWN = 86_400
BLOCK_GAS = 30_000_000  # a clawback's gas limit: one whole block (its candidates are every holder)
CHUNK = 500  # transactions per batch: one progress step, and one block (or a few) on anvil


def labelled_key(label: str) -> LocalAccount:
    """A key derived from a public label: for devnets and simulations only."""
    return Account.from_key(hashlib.sha256(f"perpclear:{label}".encode()).digest())


ROLE_LABELS = ("admin", "keeper", "matcher", "insurer", "market-maker", "liquidator")


@dataclass
class Roles:
    """The system's operators: fixed keys, the same on every engine.

    Each is a signer: an eth-account ``LocalAccount`` or anything with
    ``address`` and ``sign_transaction(dict)`` (``scripting.ApeSigner`` wraps an
    ape account); a role held elsewhere (a Safe) needs only ``address``. The
    default keys are derived from public labels (``sha256("perpclear:<role>")``):
    anyone can sign with them, so ``ape run deploy`` refuses them off devnets.
    """

    admin: LocalAccount = field(default_factory=lambda: labelled_key("admin"))
    keeper: LocalAccount = field(default_factory=lambda: labelled_key("keeper"))
    matcher: LocalAccount = field(default_factory=lambda: labelled_key("matcher"))
    insurer: LocalAccount = field(default_factory=lambda: labelled_key("insurer"))
    market_maker: LocalAccount = field(default_factory=lambda: labelled_key("market-maker"))
    liquidator: LocalAccount = field(default_factory=lambda: labelled_key("liquidator"))

    def all(self) -> list[LocalAccount]:
        return [self.admin, self.keeper, self.matcher, self.insurer, self.market_maker, self.liquidator]


ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


def revert_reason(data: bytes) -> str:
    """The reason inside revert data (``Error(string)``), else the data in hex."""
    if data[:4] == ERROR_SELECTOR:
        try:
            return abi_decode(["string"], data[4:])[0]
        except Exception:  # truncated or malformed: show the bytes
            pass
    return "0x" + data.hex()


def trader_key(seed: int, index: int) -> LocalAccount:
    return labelled_key(f"trader:{seed}:{index}")


# Deployment field -> contract name, for manifests and the audit.
CONTRACT_NAMES = {
    "token": "MockCollateral", "oracle": "PriceOracle", "vault": "InsuranceVault",
    "clearing_house": "ClearingHouse", "order_book": "OrderBook", "deleverager": "Deleverager", "profit_policy": "ProfitPolicy",
    "lens": "ClearingLens", "keeper": "Keeper", "timelock": "Timelock",
}
# The views of ClearingLens.vy (checked against its ABI by tests/cascade/test_cascade.py).
LENS_VIEWS = frozenset({
    "equity", "charges", "settled_collateral", "pending_loss_charge", "pending_funding", "max_withdraw", "is_liquidatable",
    "max_liquidation_size", "adl_indicator", "equities", "account_states", "markets", "market_params",
})


@dataclass
class Deployment:
    """A deployed system on one engine: addresses and roles."""

    engine: Engine
    roles: Roles
    token: str
    oracle: str
    vault: str
    clearing_house: str
    order_book: str
    deleverager: str  # ADL's contract (Deleverager.vy)
    profit_policy: str  # PROFIT's contract (ProfitPolicy.vy)
    lens: str
    keeper: str  # the keeper contract (Keeper.vy): marks and liquidations; operated by ``roles.keeper``
    timelock: str  # the governance timelock (Timelock.vy) of the clearing house, oracle, vault and keeper
    decimals: int
    market_count: int
    # The last order nonce this deployment signed with (`next_nonce`). A nonce
    # names one order of its trader on chain: a fresh deployment counts from 0,
    # one attached from a manifest from the current time in nanoseconds, so a
    # later session never reuses a nonce of an earlier one.
    nonce: int = 0

    @classmethod
    def attach(cls, engine: Engine, manifest: dict, roles: Roles) -> "Deployment":
        """The deployment a manifest records (``ape run deploy``), driven by ``roles``."""
        addresses = {k: engine.attach(CONTRACT_NAMES[k], c["address"]) for k, c in manifest["contracts"].items()}
        return cls(engine, roles, **addresses, decimals=manifest["decimals"], market_count=len(manifest["markets"]),
                   nonce=time.time_ns())

    def addresses(self) -> dict[str, str]:
        return {role: getattr(self, role) for role in CONTRACT_NAMES}

    def tx(self, sender: LocalAccount, contract: str, fn: str, *args: Any) -> Tx:
        return Tx(sender, contract, fn, tuple(args))

    def ledger(self) -> dict[str, int]:
        e, ch = self.engine, self.clearing_house
        names = ["bad_debt", "loss_receivable", "total_collateral", "total_open_notional", "funding_pool", "protocol_fees", "insurance_fees"]
        values = e.calls([(ch, n, ()) for n in names] + [(self.token, "balanceOf", (ch,))])
        out = dict(zip(names, values))
        out["balance"] = values[-1]
        return out

    def ledger_gap(self) -> int:
        """lhs - rhs of the ledger identity; 0 when it balances to the unit."""
        led = self.ledger()
        lhs = led["balance"] + led["bad_debt"] + led["loss_receivable"]
        rhs = led["total_collateral"] - led["total_open_notional"] + led["funding_pool"] + led["protocol_fees"] + led["insurance_fees"]
        return lhs - rhs

    def order_pair(self, buyer: LocalAccount, seller: LocalAccount, market: int, size: int, price: int, nonce: int,
                   maker: str = "buyer") -> Tx:
        """A signed buy and sell of ``size`` at ``price``, settled by the matcher
        (``maker``: "buyer" or "seller", whose order rests in the book)."""
        chain_id = self.engine.chain_id()
        buy = Order(buyer.address, market, True, size, price, EXPIRY, nonce)
        sell = Order(seller.address, market, False, size, price, EXPIRY, nonce)
        orders = [(buy.as_tuple(), sign_order(buyer, buy, chain_id, self.order_book)),
                  (sell.as_tuple(), sign_order(seller, sell, chain_id, self.order_book))]
        if maker != "buyer":
            orders.reverse()
        return self.tx(self.roles.matcher, self.order_book, "settle", *orders[0], *orders[1], size, price)

    def next_nonce(self) -> int:
        """A nonce no order signed through this deployment has used."""
        self.nonce += 1
        return self.nonce

    def open_tx(self, trader: LocalAccount, market: int, size: int, price: int) -> Tx:
        """A signed fill of ``size`` (> 0 long, < 0 short) for ``trader`` against the market maker."""
        mm = self.roles.market_maker
        nonce = self.next_nonce()
        if size > 0:
            return self.order_pair(trader, mm, market, size, price, nonce)
        return self.order_pair(mm, trader, market, -size, price, nonce)

    def open(self, trader: LocalAccount, market: int, size: int, price: int) -> list[Event]:
        """Opens (or changes) ``trader``'s position by ``size`` at ``price``; returns the events."""
        return self.engine.send([self.open_tx(trader, market, size, price)])[0]

    def run_keeper(self, marks: dict[int, int], targets: list[tuple[str, int]], max_liquidations: int,
                   size: int = HUGE) -> list[Event]:
        """One transaction of the keeper contract: pushes ``marks`` (market ->
        collateral units per contract), then liquidates up to ``size`` of each
        ``(account, market)`` target in order, once, until ``max_liquidations``
        succeeded (a refused target is skipped: ``TargetSkipped``). Returns the events."""
        return self.engine.send([self.tx(self.roles.keeper, self.keeper, "run", list(marks), list(marks.values()),
                                         [(a, m, size) for a, m in targets], max_liquidations)])[0]

    def set_marks(self, marks: dict[int, int]) -> None:
        """The keeper pushes new marks (market -> collateral units per contract)."""
        self.run_keeper(marks, [], 0)

    def liquidate(self, account: str, market: int, size: int = HUGE) -> list[Event]:
        """The keeper contract takes over up to ``size`` of ``account``'s position;
        returns the events, or raises ``EngineError`` with the clearing house's reason."""
        events = self.run_keeper({}, [(account, market)], 1, size)
        skipped = next((ev for ev in events if ev.name == "TargetSkipped"), None)
        if skipped is not None:
            raise EngineError(f"liquidate({account}, {market}) refused: {revert_reason(skipped.reason)}")
        return events

    def fund_keeper(self, amount: int) -> list[Event]:
        """The admin mints ``amount`` and deposits it as the keeper contract's margin."""
        e, r = self.engine, self.roles
        e.fund_gas([r.admin])
        return [ev for evs in e.send([self.tx(r.admin, self.token, "mint", r.admin.address, amount),
                self.tx(r.admin, self.token, "approve", self.keeper, amount),
                self.tx(r.admin, self.keeper, "fund", amount)]) for ev in evs]

    def deleverage(self, account: str, market: int, candidates: list[str]) -> list[Event]:
        """The liquidator (a keeper) runs ADL on ``account``'s last position; returns the events."""
        return self.engine.send([self.tx(self.roles.liquidator, self.deleverager, "deleverage", account, market, candidates)])[0]

    def clawback(self, account: str, market: int, candidates: list[str]) -> list[Event]:
        """PROFIT, in one transaction of the keeper contract: ``account``'s
        residual charged to the accounts in profit among ``candidates``, then
        its position in ``market`` taken over at the mark; returns the events."""
        return self.engine.send([self.clawback_tx(account, market, candidates)])[0]

    def clawback_tx(self, account: str, market: int, candidates: list[str]) -> Tx:
        """The keeper contract's ``clawback`` (see ``clawback``), with a block's gas."""
        return Tx(self.roles.keeper, self.keeper, "clawback", (account, market, candidates), gas=BLOCK_GAS)

    def view(self, fn: str, *args: Any) -> Any:
        """A view of the clearing house or, for the views that live there, of
        its lens, e.g. ``view("equity", a)``, ``view("is_liquidatable", a)``."""
        contract = self.lens if fn in LENS_VIEWS else self.clearing_house
        return self.engine.call(contract, fn, *args)

    def fund_vault(self, amount: int, backstop: int = 0) -> list[Event]:
        """The insurer deposits ``amount`` (units) into the vault; the vault's
        owner moves ``backstop`` of it into the vault's margin account."""
        e, r = self.engine, self.roles
        e.fund_gas([r.insurer])
        txs = [self.tx(r.admin, self.token, "mint", r.insurer.address, amount),
               self.tx(r.insurer, self.token, "approve", self.vault, amount),
               self.tx(r.insurer, self.vault, "deposit", amount, r.insurer.address)]
        if backstop:
            txs.append(self.tx(r.admin, self.vault, "fund_backstop", backstop))
        return [ev for evs in e.send(txs) for ev in evs]

    def fund(self, accounts: list[tuple[LocalAccount, int]]) -> None:
        """Mints, approves and deposits ``amount`` for each (account, amount)."""
        e, r = self.engine, self.roles
        e.fund_gas([a for a, _ in accounts])
        for i in range(0, len(accounts), CHUNK):
            part = accounts[i : i + CHUNK]
            e.send([self.tx(r.admin, self.token, "mint", a.address, amt) for a, amt in part], decode=False)
            e.send([self.tx(a, self.token, "approve", self.clearing_house, 2**256 - 1) for a, _ in part], decode=False)
            e.send([self.tx(a, self.clearing_house, "deposit", amt) for a, amt in part], decode=False)


# The contract of each loss policy id that places residuals at the waterfall
# (interfaces/ILossPolicy.vyi; a name in perpclear.engine.SOURCES, no
# constructor arguments): the deployment deploys and registers each. ADL's
# and PROFIT's (Deleverager.vy, ProfitPolicy.vy) take the clearing house as
# their constructor's argument and are deployed beside. A fifth policy adds
# its id here (docs/loss-policies.md, "Adding a policy").
POLICY_CONTRACTS = {POLICY_EQUITY: "EquityPolicy", POLICY_OPEN_INTEREST: "OpenInterestPolicy"}


@dataclass(frozen=True)
class Listing:
    """A market to list: its opening mark (collateral units per contract), its
    risk parameters and its loss policy (``perpclear.units.POLICY_*``)."""

    price: int
    params: MarketParams
    loss_policy: int


def deploy(engine: Engine, sc: Scenario, roles: Roles | None = None, **options: Any) -> Deployment:
    """Deploys and wires a system listing ``sc``'s markets under its loss policy
    (``deploy_markets`` says what is deployed and what ``options`` are)."""
    listings = [Listing(to_units(m.price, sc.unit), m.params(sc.unit), sc.policy) for m in sc.markets]
    return deploy_markets(engine, sc.decimals, listings, roles, **options)


def deploy_markets(engine: Engine, decimals: int, listings: list[Listing], roles: Roles | None = None,
                   timelock_delay: int = 0, fund_gas: bool = True, oracle_max_age: int = ORACLE_MAX_AGE,
                   max_move_bps: int = 0, move_window: int = 0, vault_cooldown: int = VAULT_COOLDOWN) -> Deployment:
    """The one deployment of perpclear, on any engine: the collateral mock
    (``decimals``), oracle, insurance vault, clearing house, order book,
    the ADL and PROFIT policies' contracts (deleverager, profit policy), a
    contract for every other loss policy id (``POLICY_CONTRACTS``), lens and
    keeper contract, wired to ``roles``, with
    ``listings`` listed; then, if ``timelock_delay`` > 0, that governance delay
    on the clearing house, the oracle, the vault and the keeper contract
    (docs/trust.md). ``fund_gas=False``: the admin pays its own gas (a team's
    key on a shared chain). ``max_move_bps`` over ``move_window`` seconds
    bounds the keeper's marks (0: no bound, as the crash scenarios need)."""
    r = roles or Roles()
    if fund_gas:
        engine.fund_gas(r.all())
    admin = r.admin
    timelock = engine.deploy("Timelock", sender=admin)
    token = engine.deploy("MockCollateral", "Mock USD", "mUSD", decimals, sender=admin)
    oracle = engine.deploy("PriceOracle", timelock, sender=admin)
    vault = engine.deploy("InsuranceVault", token, "perpclear insurance", "pcINS", vault_cooldown, timelock, sender=admin)
    ch = engine.deploy("ClearingHouse", token, oracle, vault, admin.address, timelock, sender=admin)
    book = engine.deploy("OrderBook", ch, sender=admin)
    adl = engine.deploy("Deleverager", ch, sender=admin)
    profit = engine.deploy("ProfitPolicy", ch, sender=admin)
    policies = {policy: engine.deploy(name, sender=admin) for policy, name in POLICY_CONTRACTS.items()}
    policies |= {POLICY_ADL: adl, POLICY_PROFIT: profit}
    lens = engine.deploy("ClearingLens", ch, sender=admin)
    keeper = engine.deploy("Keeper", ch, sender=admin)
    d = Deployment(engine, r, token, oracle, vault, ch, book, adl, profit, lens, keeper, timelock, decimals, len(listings))
    txs = [
        d.tx(admin, oracle, "set_keeper", r.keeper.address, True),
        # The keeper contract pushes marks and liquidates in one transaction; it
        # is a clearing-house keeper so that it may take over what ADL leaves.
        d.tx(admin, oracle, "set_keeper", keeper, True),
        d.tx(admin, ch, "set_keeper", keeper, True),
        d.tx(admin, keeper, "set_operator", r.keeper.address, True),
        d.tx(admin, vault, "set_clearing_house", ch),
        d.tx(admin, ch, "set_order_book", book),
        d.tx(admin, book, "set_matcher", r.matcher.address, True),
        # The liquidator is the protocol's own bot: in ADL markets only keepers
        # may deleverage, or take a bankrupt position over at the mark.
        *(d.tx(admin, ch, "set_keeper", k, True) for k in dict.fromkeys([r.keeper.address, r.liquidator.address])),
        *(d.tx(admin, ch, "set_loss_policy_contract", policy, contract) for policy, contract in policies.items()),
    ]
    for i, m in enumerate(listings):
        txs.append(d.tx(admin, oracle, "add_market", i, oracle_max_age, max_move_bps, m.price))
        if move_window > 1:  # add_market starts every market at 1 s (per block)
            txs.append(d.tx(admin, oracle, "set_move_window", i, move_window))
        txs.append(d.tx(admin, ch, "add_market", m.params.as_tuple(), m.loss_policy))
    if timelock_delay:
        txs += [d.tx(admin, timelock, "set_delay", c, timelock_delay) for c in (ch, oracle, vault, keeper)]
    engine.send(txs)
    return d
