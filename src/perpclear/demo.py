"""The demo story: deposit, trade, crash, liquidation, insurance, residual.

``run_demo`` deploys a fresh system on the connected ape network, plays the
story and prints it as tables. It returns the figures it printed, so tests can
hold the demo to its story.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console
from rich.table import Table

from perpclear.model import WAD
from perpclear.system import DEFAULT_MARKETS, POLICY_NAMES, System, deploy_system

ETH = 0


@dataclass(frozen=True)
class DemoResult:
    liquidations: int
    bankruptcies: int
    insurance_paid: int
    residual: int
    vault_assets: int
    decimals: int


def _fmt(amount: int, decimals: int) -> str:
    return f"{amount / 10**decimals:,.2f}"


def _accounts_table(system: System, title: str, names: dict[str, Any]) -> Table:
    ch, d = system.clearing_house, system.decimals
    table = Table(title=title, title_justify="left")
    for column in ("account", "collateral", "ETH size", "equity", "maintenance", "status"):
        table.add_column(column, justify="left" if column in ("account", "status") else "right")
    for name, account in names.items():
        health = ch.health(account)
        size = ch.positions(account, ETH).size
        if size and health.equity < 0:
            status = "[bold red]bankrupt[/]"
        elif size and health.equity < health.maintenance:
            status = "[yellow]liquidatable[/]"
        else:
            status = "ok"
        table.add_row(
            name,
            _fmt(ch.collateral(account), d),
            f"{size / WAD:+,.4f}",
            _fmt(health.equity, d),
            _fmt(health.maintenance, d),
            status,
        )
    return table


def _open_book(system: System, roles: dict[str, Any], insurer: Any, liquidator: Any) -> None:
    """Insurers fund the vault, traders fund margin, alice and carol go long."""
    u = system.unit
    system.fund_vault(insurer, 50 * u)
    for name, amount in DEPOSITS.items():
        system.fund(roles[name], amount * u)
    system.fund(liquidator, 20_000 * u)
    system.trade(roles["alice"], roles["bob"], ETH, 5 * WAD, 2_000 * u)
    system.trade(roles["carol"], roles["dave"], ETH, 2 * WAD, 2_000 * u)


def _sweep(system: System, roles: dict[str, Any], liquidator: Any) -> list[Any]:
    """A keeper liquidates every account it sees under maintenance."""
    ch = system.clearing_house
    return [
        ch.liquidate(account, ETH, 10 * WAD, False, sender=liquidator)
        for account in roles.values()
        if ch.is_liquidatable(account)
    ]


DEPOSITS = {"alice": 1_100, "bob": 6_000, "carol": 720, "dave": 3_000}
PRICES = (1_850, 1_740, 1_550)


def run_demo(project: Any, accounts: Any, console: Console | None = None, decimals: int = 6) -> DemoResult:
    """Plays the story on the connected network with its first nine test accounts,
    then the same crash under every loss policy."""
    console = console or Console()
    admin, keeper, matcher, liquidator, insurer, *traders = accounts[:9]
    roles = dict(zip(DEPOSITS, traders))
    console.rule("[bold]perpclear demo")
    system = deploy_system(project, admin, keeper, matcher, decimals=decimals)
    ch, vault, u = system.clearing_house, system.vault, system.unit
    console.print(f"Deployed clearing house {ch.address} on chain {system.chain_id}.")
    _open_book(system, roles, insurer, liquidator)
    console.print("Insurers put 50 into the vault; traders deposit margin and trade.")
    names = roles | {"keeper": liquidator}
    console.print(_accounts_table(system, "ETH-PERP at 2,000: alice 5 long (~9x), carol 2 long (~5.5x)", names))

    liquidations = bankruptcies = insurance_paid = residual = 0
    for price in PRICES:
        system.set_mark(ETH, price * u)
        console.print(_accounts_table(system, f"ETH-PERP marks {price:,}", names))
        for receipt in _sweep(system, roles, liquidator):
            liquidations += 1
            for event in ch.PositionLiquidated.from_receipt(receipt):
                name = next(n for n, a in roles.items() if a.address == event.account)
                kind = "fully" if event.remaining_size == 0 else "partially"
                console.print(
                    f"  keeper liquidates {name} {kind}: {abs(event.size) / WAD:,.4f} ETH, "
                    f"penalty {_fmt(event.penalty, decimals)}, vault's share {_fmt(event.insurance_reward, decimals)}"
                )
            for event in ch.AccountBankrupt.from_receipt(receipt):
                bankruptcies += 1
                insurance_paid += event.insurance_paid
                residual += event.residual
                name = next(n for n, a in roles.items() if a.address == event.account)
                console.print(
                    f"  [bold red]{name} is bankrupt[/]: deficit {_fmt(event.deficit, decimals)}, "
                    f"insurance vault pays {_fmt(event.insurance_paid, decimals)}, "
                    f"residual {_fmt(event.residual, decimals)}"
                )
            for event in ch.LossSocialized.from_receipt(receipt):
                console.print(
                    f"  residual {_fmt(event.booked, decimals)} socialized under "
                    f"{POLICY_NAMES[event.loss_policy]} in the same transaction"
                )

    console.print(_accounts_table(system, "After the crash", names))
    console.print(_policy_table(project, accounts, decimals))
    summary = Table(title="Summary", title_justify="left")
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    summary.add_row("liquidations", str(liquidations))
    summary.add_row("bankruptcies", str(bankruptcies))
    summary.add_row("insurance paid", _fmt(insurance_paid, decimals))
    summary.add_row("residual socialized", _fmt(residual - ch.bad_debt(), decimals))
    summary.add_row("residual left as bad debt", _fmt(ch.bad_debt(), decimals))
    summary.add_row("vault assets left", _fmt(vault.totalAssets(), decimals))
    errors = system.conservation_errors()
    summary.add_row("ledger identity", "[green]holds to the unit[/]" if not errors else f"[red]{errors}[/]")
    console.print(summary)
    return DemoResult(liquidations, bankruptcies, insurance_paid, residual, vault.totalAssets(), decimals)


def _policy_table(project: Any, accounts: Any, decimals: int) -> Table:
    """The same crash on a fresh deployment per loss policy: who paid what."""
    admin, keeper, matcher, liquidator, insurer, *traders = accounts[:9]
    roles = dict(zip(DEPOSITS, traders))
    payers = {"bob": roles["bob"], "dave": roles["dave"], "keeper": liquidator}
    table = Table(
        title="The same crash under each loss policy: what each account paid",
        title_justify="left",
        caption="ADL is not implemented yet: an ADL market records the residual as bad debt.",
        caption_justify="left",
    )
    table.add_column("account")
    charged = {}
    for policy, name in POLICY_NAMES.items():
        spec = replace(DEFAULT_MARKETS[0], loss_policy=policy)
        system = deploy_system(project, admin, keeper, matcher, decimals=decimals, markets=(spec, *DEFAULT_MARKETS[1:]))
        ch, u = system.clearing_house, system.unit
        _open_book(system, roles, insurer, liquidator)
        for price in PRICES[:-1]:
            system.set_mark(ETH, price * u)
            _sweep(system, roles, liquidator)
        system.set_mark(ETH, PRICES[-1] * u)
        before = {n: ch.equity(a) for n, a in payers.items()}
        _sweep(system, roles, liquidator)
        for account in payers.values():
            ch.settle_funding(account, sender=account)  # books any pending charge
        charged[name] = {n: before[n] - ch.equity(a) for n, a in payers.items()}
        charged[name]["left as bad debt"] = ch.bad_debt()
        table.add_column(name, justify="right")
    for row in (*payers, "left as bad debt"):
        table.add_row(row, *(_fmt(charged[name][row], decimals) for name in charged))
    return table
