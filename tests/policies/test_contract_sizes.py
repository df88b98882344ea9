"""Room: every deployed contract's code (runtime bytecode plus immutables, as
deployed) fits EIP-170's 24,576 bytes, with 1 KiB to spare so that the next
check or policy has somewhere to go. Printed per contract by ``-s``."""

import pytest

from harness import Mirror
from perpclear.units import POLICY_EQUITY, POLICY_OPEN_INTEREST

EIP170 = 24_576
SPARE = 1_024


def sizes():
    sim = Mirror.in_process(6)
    contracts = {
        "ClearingHouse": sim.ch, "ClearingLens": sim.lens, "Deleverager": sim.adl, "ProfitPolicy": sim.profit, "OrderBook": sim.book,
        "PriceOracle": sim.oracle, "InsuranceVault": sim.vault, "MockCollateral": sim.token, "Keeper": sim.keeper_contract,
        "Timelock": sim.timelock,
    }
    addresses = {name: c.address for name, c in contracts.items()}
    addresses |= {"EquityPolicy": sim.ch.loss_policies(POLICY_EQUITY),
                  "OpenInterestPolicy": sim.ch.loss_policies(POLICY_OPEN_INTEREST)}
    return {name: len(sim.engine.env.get_code(address)) for name, address in addresses.items()}


@pytest.fixture(scope="module")
def deployed():
    measured = sizes()
    for name, size in measured.items():
        print(f"\n[size] {name}: {size:,} bytes, {EIP170 - size:,} to spare")
    return measured


def test_sizes__every_contract_fits_eip170(deployed):
    assert all(0 < size <= EIP170 for size in deployed.values()), deployed


def test_sizes__one_kib_to_spare(deployed):
    assert {n: s for n, s in deployed.items() if EIP170 - s < SPARE} == {}
