"""`make demo` tells the story it promises, on the embedded chain and on anvil."""

import io

import pytest
from rich.console import Console

from perpclear.demo import run_demo

pytestmark = pytest.mark.anvil


@pytest.mark.parametrize("decimals", [6, 18])
def test_demo__liquidates_twice_then_bankrupts_into_the_vault(project, accounts, decimals):
    out = io.StringIO()
    result = run_demo(project, accounts, Console(file=out, width=120), decimals=decimals)
    text = out.getvalue()
    assert result.liquidations == 3  # alice partially, alice fully, carol
    assert result.bankruptcies == 1
    assert result.insurance_paid > 0 and result.residual > 0
    assert result.vault_assets == 0  # the vault paid all it had
    assert "alice partially" in text and "alice fully" in text
    assert "carol is bankrupt" in text
    assert "holds to the unit" in text
