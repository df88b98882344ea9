"""ape run deploy: deploy and configure the whole system, write deployments/<network>.json.

    ape run deploy --network ethereum:local:foundry
    ape run deploy --scenario contagion --policy OPEN_INTEREST --force
    ape run deploy --network ethereum:sepolia:node --timelock-delay 172800
"""

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from perpclear.scenario import POLICIES
from perpclear.scripting import deploy_command

# Set before ape connects: stdout carries our tables or JSON only, not ape's node notices.
logger.set_level("WARNING")


@click.command(cls=ConnectedProviderCommand, short_help="Deploy perpclear and write its manifest")
@click.option("--scenario", default="flash-crash", show_default=True, help="the scenario whose markets, decimals and policy to deploy")
@click.option("--policy", type=click.Choice(list(POLICIES)), help="override the loss policy")
@click.option("--force", is_flag=True, help="overwrite the manifest even if its deployment is live on this network")
@click.option("--out", default="deployments", show_default=True, help="directory of the manifests")
@click.option("--timelock-delay", type=int, default=None,
              help="governance delay in seconds (default: 0 on a local devnet, two days elsewhere)")
def cli(scenario, policy, force, out, timelock_delay):
    """Deploys token, oracle, insurance vault, clearing house and order book, wires
    their roles, lists the markets, and writes the manifest (addresses, ABIs,
    block, parameters, policy).

    Example: ape run deploy --network ethereum:local:foundry --scenario contagion
    """
    deploy_command(scenario, policy=policy, force=force, out=out, timelock_delay=timelock_delay)
