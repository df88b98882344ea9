"""perpclear.system on ape: the contracts a System hands out carry exactly
their own ABI, whatever ape cached for their addresses before."""

import pytest

from perpclear.system import ape_contract


@pytest.fixture(scope="module")
def decimals():
    """About ape's contract cache: the collateral's decimals change nothing."""
    return 6


def mints(contract):
    return [[i.type for i in abi.inputs] for abi in contract.contract_type.abi if getattr(abi, "name", None) == "mint"]


def test_ape_contract__ignores_what_ape_cached_for_the_address(project, system, chain):
    vault = system.vault.address
    # What an earlier module's token deployed at this address leaves in ape's
    # cache: its test isolation reverts the chain, not that cache.
    chain.contracts.instance_at(vault, contract_type=project.MockCollateral.contract_type, replace=True,
                                fetch_from_explorer=False)
    try:
        # The trap: `.at` merges both ABIs, and `mint(1_000, insurer)` then
        # encodes as the token's mint(address, uint256).
        assert sorted(mints(project.InsuranceVault.at(vault))) == [["address", "uint256"], ["uint256", "address"]]
        assert mints(ape_contract(project.InsuranceVault, vault)) == [["uint256", "address"]]
    finally:
        ape_contract(project.InsuranceVault, vault)  # the cache holds the vault's own ABI again
