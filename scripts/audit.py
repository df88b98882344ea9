"""ape run audit: rebuild every loss distribution of a deployment from chain logs.

    ape run audit --deployment reports/<run>/deployment.json --network ethereum:local:foundry
"""

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from perpclear.scripting import audit_command

# Set before ape connects: stdout carries our tables or JSON only, not ape's node notices.
logger.set_level("WARNING")


@click.command(cls=ConnectedProviderCommand, short_help="Audit the loss distributions of a deployment")
@click.option("--deployment", "manifest", help="manifest file (default: deployments/<network>.json)")
@click.option("--from-block", type=click.IntRange(0), default=None, help="first block to read (default: the deployment's)")
@click.option("--json", "as_json", is_flag=True, help="print the verdict as JSON")
def cli(manifest, from_block, as_json):
    """Reads only logs and views, replays them in the exact reference model,
    checks every guarantee and exits 1 on any mismatch (naming the event).

    Example: ape run audit --deployment deployments/local.json --network ethereum:local:foundry
    """
    audit_command(manifest, from_block=from_block, as_json=as_json)
