"""Every Python copy of a contract constant (perpclear.units) equals the
constant in its Vyper source. Constants are read from the sources themselves:
each `NAME: constant(type) = expression` line is evaluated in the order it is
written, with the module's earlier constants (and `c.` for modules/constants.vy)
in scope."""

import ast
import re
from fractions import Fraction
from pathlib import Path

import pytest

from perpclear import units

CONTRACTS = Path(__file__).resolve().parents[2] / "src" / "perpclear" / "contracts"
DECLARATION = re.compile(r"^([A-Z][A-Z0-9_]*): constant\(\w+\) = (.+)$", re.MULTILINE)


def constants(relative: str, scope: dict | None = None) -> dict[str, int]:
    """The integer constants of one Vyper source."""
    names = dict(scope or {})
    found = {}
    for name, expression in DECLARATION.findall((CONTRACTS / relative).read_text()):
        try:
            value = eval(compile(ast.parse(expression, mode="eval"), relative, "eval"), {"__builtins__": {}}, names)
        except (NameError, SyntaxError, TypeError):
            continue  # keccak256(...), max_value(...), strings: not copied on the Python side
        if isinstance(value, int):
            names[name] = found[name] = value
    return found


@pytest.fixture(scope="module")
def vyper():
    shared = constants("modules/constants.vy")

    class C:  # `c.NAME` in the modules that import constants as c
        pass

    for name, value in shared.items():
        setattr(C, name, value)
    return {
        "constants": shared,
        "loss_equity": constants("modules/loss_equity.vy", {"c": C}),
        "timelock": constants("Timelock.vy", {"c": C}),
        "ClearingHouse": constants("ClearingHouse.vy", {"c": C}),
        "Deleverager": constants("Deleverager.vy", {"c": C}),
        "ProfitPolicy": constants("ProfitPolicy.vy", {"c": C}),
        "keeper_fed": constants("modules/keeper_fed.vy", {"c": C}),
        "ClearingLens": constants("ClearingLens.vy", {"c": C}),
        "Keeper": constants("Keeper.vy", {"c": C}),
    }


def test_constants__python_copies_equal_the_contracts(vyper):
    shared = vyper["constants"]
    for name in ("WAD", "BPS", "FUNDING_SCALE", "MAX_MARKETS", "MAX_SIZE", "MAX_PRICE", "MAX_INDEX",
                 "POLICY_EQUITY", "POLICY_OPEN_INTEREST", "POLICY_ADL", "POLICY_PROFIT"):
        assert getattr(units, name) == shared[name], name
    equity = vyper["loss_equity"]
    assert units.EQUITY_SCALE == equity["SCALE"]
    assert units.MAX_RATE == Fraction(equity["MAX_RATE"], equity["SCALE"])
    assert units.EQUITY_RESCALE == equity["RESCALE"]
    assert units.EQUITY_MANTISSA_BITS == equity["MANTISSA_BITS"]
    assert units.MAX_TIMELOCK_DELAY == vyper["timelock"]["MAX_DELAY"]
    assert units.FEE_BOUND == 2 ** vyper["ClearingHouse"]["FEE_BITS"]
    assert units.MAX_CANDIDATES == vyper["Deleverager"]["MAX_CANDIDATES"]
    assert units.MAX_PAYERS == vyper["ProfitPolicy"]["MAX_PAYERS"]
    fed = vyper["keeper_fed"]
    assert units.ADL_SKIP == {fed[f"SKIP_{reason}"]: reason for reason in ("SIDE", "PROFIT", "RANK", "EQUITY", "ORDER")}
    assert units.LENS_MAX_ACCOUNTS == vyper["ClearingLens"]["MAX_ACCOUNTS"]
    assert units.KEEPER_MAX_TARGETS == vyper["Keeper"]["MAX_TARGETS"]
    assert units.MAX_PAYERS == vyper["Keeper"]["MAX_PAYERS"]
    assert "DynArray[address, 1000]" in (CONTRACTS / "interfaces" / "IProfitPolicy.vyi").read_text()


def test_constants__the_reader_sees_every_declaration(vyper):
    """The reader is not silently empty: it finds the constants it must."""
    assert len(vyper["constants"]) >= 12 and vyper["constants"]["WAD"] == 10**18
    assert vyper["loss_equity"]["MAX_RATE"] == 10**36 - 10**30
