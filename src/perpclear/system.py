"""One perpclear system on the network ape is connected to, as ape contracts.

``deploy_system`` deploys it through ``perpclear.deployment.deploy_markets``
(the one deployment, on a chain engine over ape's own provider) and returns a
``System``: the same contracts as ape ``ContractInstance`` objects, for the
tests that drive them call by call. It signs orders with the traders' keys
(EIP-712, eth-account), funds traders, moves marks, and checks the ledger
identity.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account

from perpclear.deployment import VAULT_COOLDOWN
from perpclear.model import WAD, MarketParams
from perpclear.orders import MAX_FEE_BPS, Order, sign_order
from perpclear.units import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST

# Marks go stale after an hour here (the staleness tests need one); a cascade's
# deployment never lets them (perpclear.deployment.ORACLE_MAX_AGE).
ORACLE_MAX_AGE = 3_600
ORDER_TTL = 3_600


# `read((address,bytes)[])` of the view batch (System.view_batch).
READ_SELECTOR = bytes.fromhex("762eaab3")


@functools.cache
def _account_topics() -> frozenset[bytes]:
    """Topic 0 of the clearing-house events whose first topic is an account with margin or a position."""
    from perpclear.engine import artifact

    return frozenset(t for t, e in artifact("ClearingHouse").events.items() if e["name"] in ("Deposited", "PositionChanged"))


@dataclass(frozen=True)
class MarketSpec:
    """A market to list: its oracle price in whole collateral units and its parameters."""

    name: str
    price: int
    params: MarketParams = MarketParams()
    loss_policy: int = POLICY_EQUITY


DEFAULT_MARKETS = (
    MarketSpec("ETH-PERP", 2_000),
    MarketSpec("SOL-PERP", 30, MarketParams(imr_bps=2_000, mmr_bps=1_000, penalty_bps=500)),
)


@dataclass
class System:
    """Handles to the deployed contracts and the roles that operate them."""

    token: Any
    oracle: Any
    vault: Any
    clearing_house: Any
    order_book: Any
    deleverager: Any  # Deleverager.vy: ADL
    profit_policy: Any  # ProfitPolicy.vy: PROFIT's clawback
    lens: Any  # ClearingLens: pending charges, settled collateral, max_withdraw
    keeper_contract: Any  # Keeper.vy: marks and liquidations in one transaction
    timelock: Any  # Timelock.vy: the governance delay of the clearing house, oracle, vault and keeper
    admin: Any
    keeper: Any
    matcher: Any
    decimals: int
    markets: tuple[MarketSpec, ...]
    chain_id: int
    accounts: set[str] = field(default_factory=set)
    # Optional: a contract with `read((address,bytes)[]) -> bytes[]` that makes
    # many static calls in one (the tests' ViewBatch), so that the checks
    # below cost one `eth_call` instead of dozens.
    view_batch: Any = None
    # The same system as a ``perpclear.deployment.Deployment`` on a ``ChainEngine``
    # (engine-agnostic driving: the tests' harness, scripts).
    deployment: Any = None

    @property
    def unit(self) -> int:
        """One whole collateral token in its smallest unit."""
        return 10**self.decimals

    # ------------------------------------------------------------ actions

    def fund(self, account: Any, amount: int, deposit: int | None = None) -> None:
        """Mints ``amount`` to ``account`` and deposits ``deposit`` (default: all of it)."""
        deposit = amount if deposit is None else deposit
        self.token.mint(account, amount, sender=self.admin)
        self.token.approve(self.clearing_house, 2**256 - 1, sender=account)
        if deposit:
            self.clearing_house.deposit(deposit, sender=account)
        self.accounts.add(str(account.address))

    def fund_keeper(self, amount: int) -> None:
        """Funds the keeper contract's margin with ``amount`` (``Deployment.fund_keeper``,
        sent past ape) and has the ledger guard watch its account."""
        self.deployment.fund_keeper(amount)
        self.accounts.add(str(self.keeper_contract.address))

    def fund_vault(self, insurer: Any, amount: int) -> None:
        """Mints ``amount`` to ``insurer`` and deposits it into the insurance vault."""
        self.token.mint(insurer, amount, sender=self.admin)
        self.token.approve(self.vault, amount, sender=insurer)
        self.vault.deposit(amount, insurer, sender=insurer)

    def set_mark(self, market: int, price: int) -> Any:
        """Pushes a new mark price (collateral units per contract)."""
        return self.oracle.set_price(market, price, sender=self.keeper)

    def order(self, trader: Any, market: int, is_buy: bool, size: int, limit_price: int, **kw: Any) -> tuple[Order, bytes]:
        """A fresh order of ``trader`` and its signature."""
        expiry = kw.pop("expiry", None)
        if expiry is None:
            expiry = self.clearing_house.provider.get_block("latest").timestamp + ORDER_TTL
        order = Order(
            trader=str(trader.address),
            market=market,
            is_buy=is_buy,
            size=size,
            limit_price=limit_price,
            expiry=expiry,
            nonce=kw.pop("nonce", None) or self.deployment.next_nonce(),
            reduce_only=kw.pop("reduce_only", False),
            max_fee_bps=kw.pop("max_fee_bps", MAX_FEE_BPS),
        )
        if kw:
            raise TypeError(f"unknown order fields: {sorted(kw)}")
        return order, sign_order(trader.private_key, order, self.chain_id, str(self.order_book.address))

    def trade(
        self, buyer: Any, seller: Any, market: int, size: int, price: int, maker: str = "buyer", expiry: int | None = None
    ) -> Any:
        """Signs a buy and a sell of ``size`` at ``price`` and settles them (the maker's order first)."""
        buy, buy_sig = self.order(buyer, market, True, size, price, expiry=expiry)
        sell, sell_sig = self.order(seller, market, False, size, price, expiry=expiry)
        if maker == "buyer":
            args = (buy.as_tuple(), buy_sig, sell.as_tuple(), sell_sig)
        else:
            args = (sell.as_tuple(), sell_sig, buy.as_tuple(), buy_sig)
        return self.order_book.settle(*args, size, price, sender=self.matcher)

    # ------------------------------------------------------------ checks

    def observe(self, receipt: Any) -> None:
        """Remembers every account that a receipt shows holding margin or a position."""
        from eth_utils import to_checksum_address

        for log in receipt.logs:
            topics = [bytes(t) for t in log["topics"]]
            if log["address"] == self.clearing_house.address and topics and topics[0] in _account_topics():
                self.accounts.add(to_checksum_address(topics[1][-20:]))

    def read(self, calls: list[tuple[Any, str, tuple]]) -> list[Any]:
        """(contract, view, args) -> values, in one call through ``view_batch`` when set."""
        if self.view_batch is None:
            return [getattr(c, fn)(*args) for c, fn, args in calls]
        if len(calls) > 256:  # the batch's bound
            return self.read(calls[:256]) + self.read(calls[256:])
        from eth_abi import decode, encode

        from perpclear.engine import artifact

        names = {self.token.address: "MockCollateral", self.clearing_house.address: "ClearingHouse"}
        arts = [artifact(names[c.address]) for c, _, _ in calls]
        batch = [(c.address, a.encode_call(fn, args)) for (c, fn, args), a in zip(calls, arts)]
        data = READ_SELECTOR + encode(["(address,bytes)[]"], [batch])
        raw = self.clearing_house.provider.web3.eth.call({"to": self.view_batch.address, "data": data})
        return [a.decode_output(fn, r) for (_, fn, _), a, r in zip(calls, arts, decode(["bytes[]"], bytes(raw))[0])]

    LEDGER = ("bad_debt", "loss_receivable", "total_collateral", "total_open_notional", "funding_pool", "protocol_fees",
              "insurance_fees")

    def ledger(self) -> dict[str, int]:
        """The terms of the ledger identity, read from the chain."""
        ch = self.clearing_house
        values = self.read([(self.token, "balanceOf", (ch.address,))] + [(ch, n, ()) for n in self.LEDGER])
        return dict(zip(("balance", *self.LEDGER), values))

    def conservation_errors(self) -> list[str]:
        """Every way the ledger is off, to the unit; empty when it balances.

        Checks that token balance + outstanding bad debt + socialized losses
        not yet settled equals collateral minus open notional plus the funding
        pool and owed fees, and that the
        contract's aggregates equal the sums over every account it has seen.
        All in one read (one ``eth_call`` with ``view_batch``).
        """
        ch = self.clearing_house
        accounts = sorted(self.accounts | {str(self.vault.address)})
        markets = range(len(self.markets))
        values = self.read([(self.token, "balanceOf", (ch.address,))] + [(ch, n, ()) for n in self.LEDGER]
                           + [(ch, "collateral", (a,)) for a in accounts]
                           + [(ch, "positions", (a, m)) for a in accounts for m in markets])
        led = dict(zip(("balance", *self.LEDGER), values))
        per_account = values[len(led) :]
        errors = []
        rhs = (
            led["total_collateral"]
            - led["total_open_notional"]
            + led["funding_pool"]
            + led["protocol_fees"]
            + led["insurance_fees"]
        )
        lhs = led["balance"] + led["bad_debt"] + led["loss_receivable"]
        if lhs != rhs:
            errors.append(f"balance + bad_debt + loss_receivable = {lhs} != {rhs} ({led})")
        collateral = sum(per_account[: len(accounts)])
        if collateral != led["total_collateral"]:
            errors.append(f"sum of collateral {collateral} != total_collateral {led['total_collateral']}")
        open_notional = sum(p[1] for p in per_account[len(accounts) :])
        if open_notional != led["total_open_notional"]:
            errors.append(f"sum of open notional {open_notional} != total {led['total_open_notional']}")
        return errors


def ape_contract(container: Any, address: str) -> Any:
    """The ape contract ``container`` (e.g. ``project.InsuranceVault``) at
    ``address``, with exactly that ABI. ``container.at(address)`` would merge in
    the ABI ape cached for an earlier deployment at the same address (its test
    isolation reverts the chain, not that cache): a merged ``mint`` once sent the
    token's selector to the vault."""
    from ape import chain

    return chain.contracts.instance_at(address, contract_type=container.contract_type, replace=True,
                                       fetch_from_explorer=False)


def deploy_system(
    project: Any,
    admin: Any,
    keeper: Any,
    matcher: Any,
    *,
    decimals: int = 6,
    markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS,
    oracle_max_age: int = ORACLE_MAX_AGE,
    vault_cooldown: int = VAULT_COOLDOWN,
) -> System:
    """Deploys and wires a whole system with ``perpclear.deployment.deploy_markets``
    on the network ape is connected to; ``admin`` owns everything and pays the
    gas, ``keeper`` pushes marks (and operates the keeper contract), ``matcher``
    settles orders. The roles are ape test accounts (their keys sign) or any
    ape account (``scripting.ApeSigner``)."""
    from ape import chain

    from perpclear.deployment import Listing, Roles, deploy_markets
    from perpclear.engine import ChainEngine

    def signer(account: Any) -> Any:
        key = getattr(account, "private_key", None)
        if key is not None:
            return Account.from_key(key)
        from perpclear.scripting import ApeSigner

        return ApeSigner(account)

    roles = Roles(admin=signer(admin), keeper=signer(keeper), matcher=signer(matcher), liquidator=signer(keeper))
    # shared: ape sends from these accounts too, so the engine reads nonces afresh.
    engine = ChainEngine(chain.provider.web3, roles.admin, shared=True)
    unit = 10**decimals
    d = deploy_markets(engine, decimals, [Listing(m.price * unit, m.params, m.loss_policy) for m in markets], roles,
                       fund_gas=False, oracle_max_age=oracle_max_age, vault_cooldown=vault_cooldown)
    return System(
        token=ape_contract(project.MockCollateral, d.token),
        oracle=ape_contract(project.PriceOracle, d.oracle),
        vault=ape_contract(project.InsuranceVault, d.vault),
        clearing_house=ape_contract(project.ClearingHouse, d.clearing_house),
        order_book=ape_contract(project.OrderBook, d.order_book),
        deleverager=ape_contract(project.Deleverager, d.deleverager),
        profit_policy=ape_contract(project.ProfitPolicy, d.profit_policy),
        lens=ape_contract(project.ClearingLens, d.lens),
        keeper_contract=ape_contract(project.Keeper, d.keeper),
        timelock=ape_contract(project.Timelock, d.timelock),
        admin=admin,
        keeper=keeper,
        matcher=matcher,
        decimals=decimals,
        markets=tuple(markets),
        chain_id=chain.provider.chain_id,
        deployment=d,
    )


__all__ = ["WAD", "System", "MarketSpec", "deploy_system", "ape_contract", "DEFAULT_MARKETS", "POLICY_EQUITY",
           "POLICY_OPEN_INTEREST", "POLICY_ADL"]
