import pytest


@pytest.fixture
def set_mark(oracle, keeper):
    """set_mark(market, price) -> receipt: push a raw price as the keeper."""

    def _set_mark(market, price):
        return oracle.set_price(market, price, sender=keeper)

    return _set_mark


@pytest.fixture
def fresh_oracle(project, admin):
    """A PriceOracle with no keeper and no market."""
    return project.PriceOracle.deploy(sender=admin)
