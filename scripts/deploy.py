"""ape run deploy: deploy and configure the whole system, write deployments/<network>.json.

    ape run deploy --network ethereum:local:foundry
    ape run deploy --scenario contagion --policy OPEN_INTEREST --force
    ape run deploy --network ethereum:sepolia:node --admin deployer --keeper keeper-bot \\
        --matcher 0xMatcher... --owner 0xSafe...
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
@click.option("--max-move-bps", type=click.IntRange(0, 10_000), default=None,
              help="the most a keeper moves a mark per window, 100 % = 10000 (default: 0, no bound, on a devnet; 1000 elsewhere)")
@click.option("--move-window", type=click.IntRange(1, 86_400), default=None,
              help="the window of --max-move-bps in seconds (default: 1 on a devnet, 300 elsewhere)")
@click.option("--admin", metavar="ALIAS", help="ape account that deploys and owns (required off devnets)")
@click.option("--keeper", metavar="ALIAS|ADDRESS", help="oracle and clearing-house keeper (required off devnets)")
@click.option("--matcher", metavar="ALIAS|ADDRESS", help="order-book matcher (required off devnets)")
@click.option("--owner", metavar="ADDRESS", help="propose ownership to this address (e.g. a Safe); it accepts on each contract")
def cli(scenario, policy, force, out, timelock_delay, max_move_bps, move_window, admin, keeper, matcher, owner):
    """Deploys token, oracle, insurance vault, clearing house and order book, wires
    their roles, lists the markets, and writes the manifest (addresses, ABIs,
    block, parameters, policy, roles).

    On a local devnet the roles default to keys derived from public labels. On
    any other chain (by chain id) name each role: an ape account alias for the
    admin, an alias or an address for the keeper and the matcher; keys anyone
    can compute (the dev mnemonic, the derived ones, TEST::n) are refused.

    Example: ape run deploy --network ethereum:local:foundry --scenario contagion
    """
    deploy_command(scenario, policy=policy, force=force, out=out, timelock_delay=timelock_delay,
                   admin=admin, keeper=keeper, matcher=matcher, owner=owner, max_move_bps=max_move_bps,
                   move_window=move_window)
