"""Vault fixtures: funded insurers and a test double of the clearing house."""

from pathlib import Path

import pytest

from harness import helper_contract


@pytest.fixture(scope="session")
def backstop_container():
    """The clearing-house double, compiled from this folder (not a project contract)."""
    return helper_contract(Path(__file__).parent / "MockBackstopClearing.vy")


@pytest.fixture
def fund(token, vault, admin):
    """fund(account, amount): mint `amount` to `account` and approve the vault for all."""

    def _fund(account, amount):
        token.mint(account, amount, sender=admin)
        token.approve(vault, 2**256 - 1, sender=account)

    return _fund


@pytest.fixture
def deposit(vault, fund):
    """deposit(account, amount) -> shares received (read from state, not return_value)."""

    def _deposit(account, amount):
        fund(account, amount)
        before = vault.balanceOf(account)
        vault.deposit(amount, account, sender=account)
        return vault.balanceOf(account) - before

    return _deposit


@pytest.fixture
def donate(token, admin, vault):
    """donate(amount): income or a donation, a plain token transfer to the vault."""

    def _donate(amount):
        token.mint(vault, amount, sender=admin)

    return _donate


@pytest.fixture
def clearing(backstop_container, token, vault, admin):
    """Clearing-house double, registered on the vault.

    Function-scoped on purpose: set_clearing_house is one-shot, and a lazily
    created module-scoped fixture would leak into later tests of the module."""
    contract = backstop_container.deploy(token, vault, sender=admin)
    vault.set_clearing_house(contract, sender=admin)
    return contract


@pytest.fixture
def wait_cooldown(chain, vault):
    """wait_cooldown(): move time past the vault's cooldown."""

    def _wait():
        chain.pending_timestamp += vault.cooldown()

    return _wait


@pytest.fixture(scope="session", autouse=True)
def _early_session_fixtures(admin, keeper, insurer, traders, backstop_container):
    """Request the session-scoped fixtures before any test does: ape's chain
    isolation snapshots per scope and otherwise "rebases" (costly, with an
    InvalidIsolationWarning) when a session fixture first appears mid-module."""
