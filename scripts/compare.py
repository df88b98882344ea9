"""ape run compare SCENARIO: the same scenario under every loss policy, side by side.

    ape run compare flash-crash --traders 60
"""

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from perpclear.scripting import compare_command

# Set before ape connects: stdout carries our tables or JSON only, not ape's node notices.
logger.set_level("WARNING")


@click.command(cls=ConnectedProviderCommand, short_help="Compare the loss policies on one scenario")
@click.argument("scenario")
@click.option("--traders", type=click.IntRange(1, 100_000), help="override the number of traders")
@click.option("--seed", type=click.IntRange(0), help="override the seed")
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
@click.option("--reports", default="reports", show_default=True, help="directory of the reports")
def cli(scenario, traders, seed, as_json, reports):
    """Runs SCENARIO once per policy (a fresh deployment each) and compares who paid.

    Example: ape run compare gap-30 --traders 50 --network ethereum:local:foundry
    """
    compare_command(scenario, traders=traders, seed=seed, as_json=as_json, reports=reports)
