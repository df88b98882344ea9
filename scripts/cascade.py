"""ape run cascade SCENARIO: one scenario on the connected ape network, with a report.

    ape run cascade flash-crash --network ethereum:local:foundry
    ape run cascade my.toml --policy OPEN_INTEREST --traders 100 --json
"""

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from perpclear.scenario import POLICIES
from perpclear.scripting import cascade_command

# Set before ape connects: stdout carries our tables or JSON only, not ape's node notices.
logger.set_level("WARNING")


@click.command(cls=ConnectedProviderCommand, short_help="Run a cascade scenario and write its report")
@click.argument("scenario")
@click.option("--policy", type=click.Choice(list(POLICIES)), help="override the scenario's loss policy")
@click.option("--traders", type=click.IntRange(1, 100_000), help="override the number of traders")
@click.option("--seed", type=click.IntRange(0), help="override the seed")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON instead of the story")
@click.option("--reports", default="reports", show_default=True, help="directory of the reports")
def cli(scenario, policy, traders, seed, as_json, reports):
    """Runs SCENARIO (a file, or a bundled name: see `perpclear scenarios`).

    Example: ape run cascade gap-30 --policy OPEN_INTEREST --network ethereum:local:foundry
    """
    cascade_command(scenario, policy=policy, traders=traders, seed=seed, as_json=as_json, reports=reports)
