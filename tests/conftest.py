"""Root fixtures: session-scoped roles and the core deployments.

`accounts` is ape's test-account fixture (accounts.test_accounts). Roles
are named after what they do (admin, keeper, matcher, liquidator, insurer, traders).
Token decimals are a test parameter (6 and 18). `token`, `oracle` and `vault`
are module-scoped: deployed once per module and decimals value, and ape's
isolation reverts the chain to that snapshot after every test, so tests still
start from the fresh deployments without paying for them each time. A module
that does not care about decimals overrides `decimals` with a module-scoped
fixture returning one value.
"""

import itertools
import os
from pathlib import Path

import pytest

from harness import Mirror, helper_contract


def _drop_stale_build() -> None:
    """ape's build cache keys each contract on its own file, so a change to an
    imported module or interface alone leaves stale bytecode. When any contract
    source changed since the last run, the cache goes and ape rebuilds all."""
    from perpclear.engine.base import sources_digest

    root = Path(__file__).resolve().parents[1]
    digest = sources_digest()
    stamp = root / ".build" / "perpclear-sources.sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    (root / ".build" / "__local__.json").unlink(missing_ok=True)
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(digest)


# Under pytest-xdist the controller does this once, before the workers start:
# two workers compiling a cold project at once race on .build/.
if "PYTEST_XDIST_WORKER" not in os.environ:
    _drop_stale_build()
    import ape

    ape.project.load_contracts()

# Oracle markets deployed by the `oracle` fixture: id -> price in whole units.
MARKET_PRICES = {0: 2_000, 1: 30}
ORACLE_MAX_AGE = 3_600
VAULT_COOLDOWN = 86_400


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def matcher(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def liquidator(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def insurer(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def traders(accounts):
    return [accounts[i] for i in range(5, 15)]


@pytest.fixture(scope="session", autouse=True)
def _roles_first(admin, keeper, matcher, liquidator, insurer, traders):
    """Every role is set up before the first chain snapshot: a role first
    asked for in the middle of a module made ape rebase its isolation."""


@pytest.fixture(scope="module", params=[6, 18], ids=["dec6", "dec18"])
def decimals(request):
    return request.param


@pytest.fixture(scope="module")
def unit(decimals):
    """One whole token in smallest units (10**decimals)."""
    return 10**decimals


@pytest.fixture(scope="module")
def token(project, admin, decimals):
    return project.MockCollateral.deploy("Mock USD", "mUSD", decimals, sender=admin)


@pytest.fixture(scope="module")
def timelock(project, admin):
    """A governance timelock (Timelock.vy) for contracts a test deploys itself."""
    return project.Timelock.deploy(sender=admin)


@pytest.fixture(scope="module")
def oracle(project, admin, keeper, unit, timelock):
    contract = project.PriceOracle.deploy(timelock, sender=admin)
    contract.set_keeper(keeper, True, sender=admin)
    for market, whole_price in MARKET_PRICES.items():
        contract.add_market(market, ORACLE_MAX_AGE, 0, whole_price * unit, sender=admin)
    return contract


@pytest.fixture(scope="module")
def vault(project, admin, token, timelock):
    return project.InsuranceVault.deploy(
        token, "perpclear insurance", "pcINS", VAULT_COOLDOWN, timelock, sender=admin
    )


# ---------------------------------------------------------------- the system

from perpclear.system import deploy_system  # noqa: E402


@pytest.fixture(scope="session")
def view_batch(admin):
    """tests/ViewBatch.vy: the ledger guard's views in one eth_call (see System.read)."""
    return helper_contract(Path(__file__).parent / "ViewBatch.vy").deploy(sender=admin)


@pytest.fixture
def make_system(project, admin, keeper, matcher, decimals, view_batch):
    """Factory: ``make_system(markets=..., ...)`` deploys a whole system
    (``owner=``: another deployer and owner than ``admin``).

    Every system it deploys is guarded: the ledger identity is checked after
    every transaction the test sends (see ``ledger_guard``).
    """
    deployed_here = []

    def make(owner=admin, **kwargs):
        kwargs.setdefault("decimals", decimals)
        deployed = deploy_system(project, owner, keeper, matcher, **kwargs)
        deployed.view_batch = view_batch
        _GUARDED.append(deployed)
        deployed_here.append(deployed)
        return deployed

    yield make
    for deployed in deployed_here:
        _GUARDED.remove(deployed)


@pytest.fixture(scope="module")
def system(project, admin, keeper, matcher, decimals, view_batch):
    """A whole deployed system: token, oracle, vault, clearing house, order
    book and two markets (`perpclear.system.DEFAULT_MARKETS`), guarded.

    Deployed once per module (and decimals): ape's isolation reverts the
    chain to it after every test, so each test starts from this state."""
    deployed = deploy_system(project, admin, keeper, matcher, decimals=decimals)
    deployed.view_batch = view_batch
    _GUARDED.append(deployed)
    yield deployed
    _GUARDED.remove(deployed)


_GUARDED: list = []


@pytest.fixture(autouse=True)
def _system_as_deployed(request):
    """The module's system starts each test as deployed on the Python side
    too (the chain is reverted by ape): no accounts seen, order nonces from 1,
    so calldata, and so gas, never depend on the tests before."""
    if "system" in request.fixturenames:
        deployed = request.getfixturevalue("system")
        deployed.accounts = set()
        deployed._nonces = itertools.count(1)


@pytest.fixture(autouse=True)
def ledger_guard(chain, monkeypatch):
    """Checks conservation, to the unit, after every mined transaction.

    Wraps the connected provider's ``send_transaction``: once a ``system`` is
    deployed in the test, every successful transaction is followed by
    ``System.conservation_errors()``, and any error fails the test at once.
    """
    cls = type(chain.provider)
    send = cls.send_transaction

    def checked_send(self, txn):
        receipt = send(self, txn)
        for deployed in _GUARDED:
            deployed.observe(receipt)
            errors = deployed.conservation_errors()
            assert not errors, f"conservation broken after tx {receipt.txn_hash}: {errors}"
        return receipt

    # The provider is a pydantic model: patch its class for this test only.
    monkeypatch.setattr(cls, "send_transaction", checked_send)
    yield


@pytest.fixture
def mirror(system, insurer):
    """The system and the exact model in lock step (harness.Mirror)."""
    return Mirror.on_system(system, insurer)


@pytest.fixture
def settle(system):
    """settle(maker, taker, size, price, sender=None, book=None): submits two (order, signature) pairs to the order book as the matcher."""

    def _settle(maker, taker, size, price, sender=None, book=None):
        (maker_order, maker_sig), (taker_order, taker_sig) = maker, taker
        return (book or system.order_book).settle(
            maker_order.as_tuple(),
            maker_sig,
            taker_order.as_tuple(),
            taker_sig,
            size,
            price,
            sender=sender or system.matcher,
        )

    return _settle


def pytest_collection_modifyitems(config, items):
    """``ci_scale`` tests run in .ci/run (PERPCLEAR_FUZZ_PROFILE=ci); make test runs each check at a
    smaller size, on fewer scenarios or on one chain."""
    if os.environ.get("PERPCLEAR_FUZZ_PROFILE", "quick") == "ci":
        return
    skip = pytest.mark.skip(reason="a larger form of a check make test runs: .ci/run runs it (PERPCLEAR_FUZZ_PROFILE=ci)")
    for item in items:
        if item.get_closest_marker("ci_scale"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fuzz_profile():
    """Size of the stateful fuzzing: "quick" (make test) or "ci" (.ci/run), from PERPCLEAR_FUZZ_PROFILE."""
    profile = os.environ.get("PERPCLEAR_FUZZ_PROFILE", "quick")
    if profile not in ("quick", "ci"):
        raise pytest.UsageError(f"PERPCLEAR_FUZZ_PROFILE must be quick or ci, not {profile!r}")
    return profile
