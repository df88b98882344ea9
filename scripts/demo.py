"""ape run demo: the deposit -> trade -> crash -> liquidation -> insurance story.

Runs on ape's embedded chain by default; any network with --network, e.g.
``ape run demo --network ethereum:local:foundry`` for a real anvil node.
"""

import click
from ape import accounts, project
from ape.logging import logger
from ape.cli import ConnectedProviderCommand

from perpclear.demo import run_demo


@click.command(cls=ConnectedProviderCommand, short_help="Play the clearing story on a fresh deployment")
@click.option("--decimals", type=click.Choice(["6", "18"]), default="6", show_default=True, help="Collateral token decimals.")
def cli(decimals):
    """Deploy perpclear, trade, crash the price, liquidate and draw on insurance.

    Example: ape run demo --network ethereum:local:foundry
    """
    logger.set_level("WARNING")  # one table per step, not one line per transaction
    run_demo(project, accounts.test_accounts, decimals=int(decimals))
