"""ape run demo (what `make demo` runs): the flash crash, told as a story, with a report.

Runs on ape's embedded chain by default; any network with --network, e.g.
``ape run demo --network ethereum:local:foundry`` for a real anvil node.
"""

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from perpclear.scripting import demo_command

# Set before ape connects: stdout carries our tables only, not ape's node notices.
logger.set_level("WARNING")


@click.command(cls=ConnectedProviderCommand, short_help="Play the flash-crash cascade and write its report")
@click.option("--traders", type=click.IntRange(1, 100_000), default=60, show_default=True, help="number of traders")
@click.option("--reports", default="reports", show_default=True, help="directory of the reports")
def cli(traders, reports):
    """Deploys perpclear, funds the traders, crashes ETH 25 % with a keeper one
    block late, drains the insurance vault and socializes the rest by equity;
    prints who was liquidated, what the vault paid, the residual and who paid
    what, and writes the report.

    Example: ape run demo --network ethereum:local:foundry --traders 200
    """
    demo_command(traders=traders, reports=reports)
