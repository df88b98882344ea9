import pytest


@pytest.fixture(scope="module")
def fee_token(project, admin, decimals):
    return project.FeeOnTransferToken.deploy("Fee USD", "fUSD", decimals, sender=admin)


@pytest.fixture(scope="module", params=["MockCollateral", "FeeOnTransferToken"])
def any_token(request, project, admin):
    """Both token mocks: the ERC-20 surface they share is tested once for each.

    Amounts here are raw units with no fee-relevant size, so decimals do not
    matter: one value (6) keeps the matrix small; the decimals parameter is
    exercised by test_mock_collateral.py and test_fee_on_transfer.py.
    """
    return getattr(project, request.param).deploy("Any USD", "aUSD", 6, sender=admin)


@pytest.fixture(scope="session", autouse=True)
def _early_session_fixtures(admin, keeper, insurer, traders):
    """Request the session-scoped fixtures before any test does: ape's chain
    isolation snapshots per scope and otherwise "rebases" (costly, with an
    InvalidIsolationWarning) when a session fixture first appears mid-module."""
