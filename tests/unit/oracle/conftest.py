import pytest


@pytest.fixture
def set_mark(oracle, keeper):
    """set_mark(market, price) -> receipt: push a raw price as the keeper."""

    def _set_mark(market, price):
        return oracle.set_price(market, price, sender=keeper)

    return _set_mark


@pytest.fixture(scope="module")
def fresh_oracle(project, admin, timelock):
    """A PriceOracle with no keeper and no market."""
    return project.PriceOracle.deploy(timelock, sender=admin)


@pytest.fixture(scope="module")
def decimals():
    """The oracle never reads the token: its logic is the same for 6 and 18
    decimals, so oracle tests run once (6) to stay fast; the 18-decimal
    magnitudes are covered by test_set_price__18_decimal_magnitudes."""
    return 6


@pytest.fixture(scope="session", autouse=True)
def _early_session_fixtures(admin, keeper, insurer, traders):
    """Request the session-scoped fixtures before any test does: ape's chain
    isolation snapshots per scope and otherwise "rebases" (costly, with an
    InvalidIsolationWarning) when a session fixture first appears mid-module."""
