"""The demo story: deposit, trade, crash, liquidation, insurance, residual.

``run_demo`` deploys a fresh system on the connected ape network, plays the
story and prints it as tables. It returns the figures it printed, so tests can
hold the demo to its story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from perpclear.model import WAD
from perpclear.system import POLICY_NAMES, System, deploy_system

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


def run_demo(project: Any, accounts: Any, console: Console | None = None, decimals: int = 6) -> DemoResult:
    """Plays the story on the connected network with its first ten test accounts."""
    console = console or Console()
    admin, keeper, matcher, liquidator, insurer, alice, bob, carol, dave = accounts[:9]
    console.rule("[bold]perpclear demo")
    system = deploy_system(project, admin, keeper, matcher, decimals=decimals)
    ch, vault, u = system.clearing_house, system.vault, system.unit
    console.print(f"Deployed clearing house {ch.address} on chain {system.chain_id}.")

    system.fund_vault(insurer, 50 * u)
    deposits = {"alice": (alice, 1_100), "bob": (bob, 6_000), "carol": (carol, 720), "dave": (dave, 3_000)}
    for account, amount in deposits.values():
        system.fund(account, amount * u)
    system.fund(liquidator, 20_000 * u)
    console.print("Insurers deposit 50 into the vault; traders deposit margin.")

    system.trade(alice, bob, ETH, 5 * WAD, 2_000 * u)
    system.trade(carol, dave, ETH, 2 * WAD, 2_000 * u)
    names = {name: account for name, (account, _) in deposits.items()} | {"keeper": liquidator}
    console.print(_accounts_table(system, "ETH-PERP at 2,000: alice 5 long (~9x), carol 2 long (~5.5x)", names))

    liquidations = bankruptcies = insurance_paid = residual = 0
    for price in (1_850, 1_740, 1_550):
        system.set_mark(ETH, price * u)
        console.print(_accounts_table(system, f"ETH-PERP marks {price:,}", names))
        for name, account in names.items():
            if not ch.is_liquidatable(account):
                continue
            receipt = ch.liquidate(account, ETH, 10 * WAD, False, sender=liquidator)
            liquidations += 1
            for event in ch.PositionLiquidated.from_receipt(receipt):
                kind = "fully" if event.remaining_size == 0 else "partially"
                console.print(
                    f"  keeper liquidates {name} {kind}: {abs(event.size) / WAD:,.4f} ETH, "
                    f"penalty {_fmt(event.penalty, decimals)}, vault's share {_fmt(event.insurance_reward, decimals)}"
                )
            for event in ch.AccountBankrupt.from_receipt(receipt):
                bankruptcies += 1
                insurance_paid += event.insurance_paid
                residual += event.residual
                console.print(
                    f"  [bold red]{name} is bankrupt[/]: deficit {_fmt(event.deficit, decimals)}, "
                    f"insurance vault pays {_fmt(event.insurance_paid, decimals)}, "
                    f"residual {_fmt(event.residual, decimals)}"
                )
            for event in ch.ResidualRecorded.from_receipt(receipt):
                console.print(
                    f"  residual {_fmt(event.residual, decimals)} recorded as bad debt "
                    f"(market policy {POLICY_NAMES[event.loss_policy]})"
                )

    console.print(_accounts_table(system, "After the crash", names))
    summary = Table(title="Summary", title_justify="left")
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    summary.add_row("liquidations", str(liquidations))
    summary.add_row("bankruptcies", str(bankruptcies))
    summary.add_row("insurance paid", _fmt(insurance_paid, decimals))
    summary.add_row("residual (bad debt)", _fmt(ch.bad_debt(), decimals))
    summary.add_row("vault assets left", _fmt(vault.totalAssets(), decimals))
    errors = system.conservation_errors()
    summary.add_row("ledger identity", "[green]holds to the unit[/]" if not errors else f"[red]{errors}[/]")
    console.print(summary)
    return DemoResult(liquidations, bankruptcies, insurance_paid, residual, vault.totalAssets(), decimals)
