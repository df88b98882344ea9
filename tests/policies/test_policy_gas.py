"""Constant gas (docs/loss-policies.md, "Gas"), measured in titanoboa.

Gas figures are whole-transaction gas as a node would charge it: 21_000 +
calldata + execution - refund (EIP-3529 cap), from the boa computation of the
call (``get_gas_used``, ``get_gas_refund``). boa runs calls as messages with
no transaction boundary, so warm slots and EIP-2200 original values would
carry over between calls: the absolute figures come from calls preceded by
``Mirror.new_transaction()`` (journal locked, access lists reset).

1. Constant: the bankrupt liquidation (insurance draw + socialization) with
   exactly the same shape (same victim key, margin, size, gap, vault draw,
   liquidator) on fresh systems with 10, 100 and 1_000 other accounts (10 and 100 in make test; not
   the shared snapshots: a boa snapshot does not survive a journal lock),
   four in a row: EQUITY as first and as next socialization of the system,
   then OPEN_INTEREST twice. Same gas within 1 % for each.
2. Absolute: the bankrupt liquidation's targets are whole transactions on
   the embedded chain (tests/gas/test_gas.py, docs/gas.md); here, the
   figures in titanoboa are printed.
3. Lazy settlement: identical probe accounts (one position in each market)
   are settled after 0, 1, 2, 10 and 100 socializations they have not seen,
   and again after one more (their snapshots no longer zero): one step,
   within the 25_000 target.
4. ADL: one deleverage call closing 1, 2, 10 and 20 counterparties; the
   marginal gas per counterparty is linear, within the 50_000 target.
5. PROFIT: one clawback charging 1, 2, 10 and 20 accounts, then the keeper's
   take-over: the marginal gas per account charged (the same target), and
   the take-over's.
6. Listed but unused markets: every per-account operation, a deleverage and
   a clawback cost the same with 8 markets listed as with 2 (2 traded).
(Targets 3 and 4 are missed: strict xfails, each with where the gas goes.)
"""

import pytest

from perpclear.model import WAD, MarketParams
from perpclear.units import POLICIES, POLICY_ADL, POLICY_EQUITY, POLICY_PROFIT

from harness import ETH, HUGE, Mirror, SOL, by_name, key, populate, tx_gas

VICTIM = 9_300_001
# Population sizes of the constant-gas check: up to 1,000 accounts in the ci
# profile (.ci/run); 100 in make test, where populating 1,000 on titanoboa
# alone takes over a minute.
SIZES = {"quick": (10, 100), "ci": (10, 100, 1_000)}
LAZY_TARGET = 25_000  # one settlement step, an account in two markets, whatever is pending


def bankrupt_liquidation(sim, policy, victim_key):
    """Vault holds 11 tokens, a 9.5x long of 5_000 gaps to 1_700; returns the liquidation's gas
    (the call is a clean transaction)."""
    u = sim.u
    sim.set_mark(ETH, 2_000 * u)
    sim.set_loss_policy(ETH, policy)
    sim.fund_vault(11 * u)
    victim = sim.victim(victim_key, ETH, 5_000 * u, 950).address
    sim.set_mark(ETH, 1_700 * u)
    calldata = sim.ch.liquidate.prepare_calldata(victim, ETH, HUGE, False)
    sim.new_transaction()
    liq = sim.liquidate(victim, ETH)
    assert liq.bankrupt.insurance_paid == 11 * u and liq.socialized is not None
    assert liq.socialized.loss_policy == policy and liq.socialized.booked == liq.socialized.residual
    return tx_gas(liq.computation, calldata)


SHAPES = (("EQUITY", "first"), ("EQUITY", "next"), ("OPEN_INTEREST", "first"), ("OPEN_INTEREST", "next"))


@pytest.fixture(scope="module")
def liquidation_gas(fuzz_profile):
    """Per population size, a fresh system (not a shared snapshot: every measured call is a
    clean transaction) and the same four bankrupt liquidations in the same order.
    Returns {(policy, which): {n: gas}}."""
    measured = {shape: {} for shape in SHAPES}
    for n in SIZES[fuzz_profile]:
        sim = Mirror.in_process(6)
        populate(sim, n)
        with sim.active():
            for i, (policy, which) in enumerate(SHAPES):
                measured[(policy, which)][n] = bankrupt_liquidation(sim, POLICIES[policy], VICTIM + i)
    for (policy, which), by_n in measured.items():
        figures = ", ".join(f"{n} accounts: {g:,}" for n, g in by_n.items())
        print(f"\n[gas] bankrupt liquidation + insurance draw + {policy} ({which} socialization): {figures}", end="")
    print()
    return measured


# EQUITY (first) is printed, not asserted: a fresh system's first socialization writes its side
# indexes, scale and receivable from zero, and the 1_000-account history differs there by one
# aggregate slot (zero in the 10- and 100-account histories): a history-dependent zero-to-nonzero
# write, not work that grows with the accounts (every later socialization costs the same to the unit).
@pytest.mark.parametrize("shape", SHAPES[1:], ids=lambda s: f"{s[0]}-{s[1]}")
def test_gas__bankrupt_liquidation_is_independent_of_the_number_of_accounts(liquidation_gas, shape):
    by_n = liquidation_gas[shape]
    figures = ", ".join(f"{n} accounts: {g:,}" for n, g in by_n.items())
    spread = max(by_n.values()) / min(by_n.values()) - 1
    assert spread <= 0.01, f"{shape} liquidation gas varies by {spread:.2%} with the population: {figures}"


def test_gas__lazy_settlement_is_one_step_whatever_is_pending():
    sim = Mirror.in_process(6)
    populate(sim, 10)
    u = sim.u
    pendings = (0, 1, 2, 10, 100)
    with sim.active():
        probes = []
        for k in pendings:  # identical accounts: long 1 ETH and short 10 SOL on 5_000
            probe = key(9_500_000 + k)
            sim.fund(probe.address, 5_000 * u)
            sim.open(probe, ETH, WAD)
            sim.open(probe, SOL, -10 * WAD)
            probes.append(probe.address)
        victims = []
        for i in range(max(pendings) + 1):  # one more for the steady-state step
            trader = key(9_400_000 + i)
            sim.fund(trader.address, 4 * u, check=False)
            sim.open(trader, SOL, 4 * u * 4 * WAD // sim.model.markets[SOL].price, check=False)
            victims.append(trader.address)
        sim.check()
        sim.move(SOL, -3_000)
        measured = {}
        done = 0
        for probe, pending in zip(probes, pendings):
            while done < pending:
                liq = sim.liquidate(victims[done], SOL)
                assert liq.socialized is not None and liq.socialized.booked > 0
                done += 1
            calldata = sim.ch.settle_funding.prepare_calldata(probe)
            sim.new_transaction()
            charge, model_charge, logs = sim.settle(probe)
            measured[pending] = tx_gas(sim.computation, calldata)
            assert (len(by_name(logs, "LossSettled")) == 1) == (pending > 0)
            assert abs(charge - model_charge) <= 1
        # Steady state: one more socialization, and the probe settled after one
        # pending settles again (its EQUITY snapshots are no longer zero).
        liq = sim.liquidate(victims[done], SOL)
        assert liq.socialized is not None and liq.socialized.booked > 0
        calldata = sim.ch.settle_funding.prepare_calldata(probes[1])
        sim.new_transaction()
        charge, model_charge, logs = sim.settle(probes[1])
        steady = tx_gas(sim.computation, calldata)
        assert len(by_name(logs, "LossSettled")) == 1 and abs(charge - model_charge) <= 1
    base = measured[0]
    marginal = {k: g - base for k, g in measured.items() if k}
    per_pending = {k: m / k for k, m in marginal.items()}
    figures = ", ".join(f"{k} pending: {g:,} (+{g - base:,})" for k, g in measured.items())
    print(f"\n[gas] settle_funding of an account in two markets: {figures}")
    print("[gas] marginal per pending socialization: " + ", ".join(f"{k}: {v:,.0f}" for k, v in per_pending.items()))
    print(f"[gas] the step again, snapshots nonzero (steady state): {steady:,} (+{steady - base:,})")
    # one step: settling 100 pending socializations costs what settling one costs
    assert max(marginal.values()) - min(marginal.values()) <= 0.01 * measured[1], figures
    LAZY.update(measured, steady=steady)


LAZY = {}


@pytest.mark.xfail(strict=True, reason=(
    "missed: the one settlement step costs 82,231 gas over a plain settle_funding the first time "
    "(clean transaction, an account in two markets, EQUITY snapshots written from zero: 2 x 22,100) "
    "and 47,994 in steady state: the account's collateral, word and two snapshots, the two side "
    "indexes read, and the ledger's total collateral, receivable and G written, with the LossSettled log."))
def test_gas__lazy_settlement_step_within_target():
    if not LAZY:
        test_gas__lazy_settlement_is_one_step_whatever_is_pending()
    base = LAZY[0]
    steps = {k: g - base for k, g in LAZY.items() if k != 0}
    assert max(steps.values()) <= LAZY_TARGET, f"settlement step above {LAZY_TARGET:,}: {steps}"


ADL_TARGET = 50_000  # per counterparty closed (ADL) or account charged (PROFIT)


def gapped(policy: int, k: int, base: int, idle_markets: int = 0):
    """A long of 4 ETH on 1,000 bought from k equal shorts at 2,000 gaps to 1,650
    (no vault): (the system, the long, the shorts), keys from ``base``; the
    system lists ``idle_markets`` more markets that no one trades."""
    sim = Mirror.in_process(6, policies=(policy, policy), extra_markets=((100, MarketParams()),) * idle_markets)
    u = sim.u
    with sim.active():
        victim = key(base)
        sim.fund(victim.address, 1_000 * u)
        shorts = []
        for i in range(k):
            short = key(base + 1 + i)
            sim.fund(short.address, 5_000 * u)
            sim.trade(victim, short, ETH, 4 * WAD // k, 2_000 * u)
            shorts.append(short.address)
        sim.set_mark(ETH, 1_650 * u)
    return sim, victim, shorts


def deleverage_gas(k: int, idle_markets: int = 0) -> int:
    """One deleverage call closes the gapped long against all k shorts: its whole-transaction gas."""
    sim, victim, shorts = gapped(POLICY_ADL, k, 9_000_000, idle_markets)
    with sim.active():
        calldata = sim.adl.deleverage.prepare_calldata(victim.address, ETH, shorts)
        sim.new_transaction()
        _, result, computation = sim.deleverage(victim.address, ETH, shorts)
        assert result.remaining == 0 and len(result.fills) == k
        return tx_gas(computation, calldata)


def test_gas__adl_per_counterparty_closed():
    measured = {k: deleverage_gas(k) for k in (1, 2, 10, 20)}
    # From two counterparties on, EIP-3529's refund cap (a fifth of the gas used)
    # binds: the cost per counterparty is the slope between call sizes in that
    # regime. (From one to two, the refund is capped for the first time.)
    slopes = {"2 to 10": (measured[10] - measured[2]) / 8, "10 to 20": (measured[20] - measured[10]) / 10}
    print("\n[gas] deleverage closing k counterparties: " + ", ".join(f"{k}: {g:,}" for k, g in measured.items()))
    print("[gas] per counterparty: " + ", ".join(f"{k}: {v:,.0f}" for k, v in slopes.items()))
    # Linear in the counterparties closed (within 2 %); the first also pays
    # the call's fixed part (checks, the bankrupt account's settlement, the
    # waterfall when it closes).
    assert max(slopes.values()) - min(slopes.values()) <= 0.02 * max(slopes.values()), slopes
    SLOPES["ADL"] = slopes


def clawback_gas(k: int, idle_markets: int = 0) -> tuple[int, int]:
    """One clawback call charges the gapped long's residual to all k shorts, then
    the keeper takes the position over. Returns the whole-transaction gas of both."""
    sim, victim, shorts = gapped(POLICY_PROFIT, k, 9_100_000, idle_markets)
    u = sim.u
    with sim.active():
        shorts.sort(key=lambda a: int(a, 16))
        calldata = sim.profit.clawback.prepare_calldata(victim.address, ETH, shorts)
        sim.new_transaction()
        sent, result = sim.clawback(victim.address, ETH, shorts)
        clawback = tx_gas(sim.computation, calldata)
        assert len([c for c in result.charged.values() if c]) == k and sum(result.charged.values()) == result.residual
        sim.fund(sim.keeper, 10_000 * u)
        calldata = sim.ch.liquidate.prepare_calldata(victim.address, ETH, HUGE, False)
        sim.new_transaction()
        liq = sim.liquidate(victim.address, ETH, by_keeper=True)
        assert liq.bankrupt is None and sim.ch.bad_debt() == 0  # the payers covered R: nothing left
        return clawback, tx_gas(liq.computation, calldata)


def test_gas__profit_per_account_charged():
    """PROFIT: the clawback's cost per account charged (the slope between call
    sizes, where EIP-3529's refund cap binds) and the whole bankruptcy (the
    clawback plus the keeper's take-over at the mark). Printed for docs/loss-policies.md."""
    measured = {k: clawback_gas(k) for k in (1, 2, 10, 20)}
    slopes = {"2 to 10": (measured[10][0] - measured[2][0]) / 8, "10 to 20": (measured[20][0] - measured[10][0]) / 10}
    print("\n[gas] clawback charging k accounts (clawback + take-over): "
          + ", ".join(f"{k}: {c:,} + {t:,}" for k, (c, t) in measured.items()))
    print("[gas] per account charged: " + ", ".join(f"{k}: {v:,.0f}" for k, v in slopes.items()))
    # Linear in the accounts charged (within 2 %); the take-over costs the
    # same whatever the number of payers.
    assert max(slopes.values()) - min(slopes.values()) <= 0.02 * max(slopes.values()), slopes
    assert len({t for _, t in measured.values()}) == 1, measured
    SLOPES["PROFIT"] = slopes


SLOPES = {}
PER_ACCOUNT_MISSED = (
    "missed: each counterparty closed costs about 63k: the deleverager reads its position and "
    "cross-margin health (two calls: the position's three words, the account's word and collateral, "
    "cold), and the clearing house's adl_fill settles it, moves both positions (the counterparty's "
    "position word, collateral and open-markets bit written, open interest, two logs) and checks "
    "its health again; the closed position keeps its word (no refund, about 4.8k)")


@pytest.mark.parametrize("policy", [
    pytest.param("ADL", marks=pytest.mark.xfail(strict=True, reason=PER_ACCOUNT_MISSED)),
    "PROFIT",
])
def test_gas__per_account_within_target(policy):
    if policy not in SLOPES:
        {"ADL": test_gas__adl_per_counterparty_closed, "PROFIT": test_gas__profit_per_account_charged}[policy]()
    assert max(SLOPES[policy].values()) <= ADL_TARGET, SLOPES[policy]


def per_account_gas(idle_markets: int) -> dict:
    """The same per-account operations on a system listing ETH and SOL plus
    ``idle_markets`` markets no one trades: execution gas of each (calldata
    is the same in both systems, so it is left out: a stricter comparison)."""
    sim = Mirror.in_process(6, extra_markets=((100, MarketParams()),) * idle_markets)
    u = sim.u
    gas = {}

    def measure(name, call, contract):
        sim.new_transaction()
        call()  # no checks inside: the computation read next must be the call's own
        gas[name] = contract._computation.get_gas_used()
        sim.check()

    with sim.active():
        a, b = key(9_600_001), key(9_600_002)
        sim.mint(a.address, 10_000 * u)
        sim.fund(b.address, 10_000 * u)
        measure("deposit (first)", lambda: sim.deposit(a.address, 5_000 * u, check=False), sim.ch)
        measure("fill (both open)", lambda: sim.trade(a, b, ETH, WAD, 2_000 * u, check=False), sim.book)
        measure("fill (both increase)", lambda: sim.trade(a, b, ETH, WAD, 2_000 * u, check=False), sim.book)
        measure("fill (second market)", lambda: sim.trade(b, a, SOL, 10 * WAD, 30 * u, check=False), sim.book)
        measure("withdraw", lambda: sim.withdraw(a.address, 100 * u, check=False), sim.ch)
        sim.new_transaction()
        sim.settle(a.address)
        gas["settle_funding"] = sim.computation.get_gas_used()
        gas["bankrupt liquidation (EQUITY)"] = bankrupt_liquidation(sim, POLICY_EQUITY, VICTIM)
        sim.new_transaction()
        charge, _, _ = sim.settle(a.address)
        assert charge > 0
        gas["lazy settlement (two markets)"] = sim.computation.get_gas_used()
        measure("fill (both reduce)", lambda: sim.trade(b, a, ETH, WAD, 1_700 * u, check=False), sim.book)
    return gas


def test_gas__listed_but_unused_markets_cost_nothing():
    """An account's open markets are one word: with 8 markets listed and 2
    traded, every per-account operation costs what it costs with 2 listed."""
    assert_same_with_8_listed(per_account_gas(0), per_account_gas(6))


def assert_same_with_8_listed(two: dict, eight: dict, label: str = ""):
    """Prints each operation's gas with 2 and 8 markets listed; each within 2 %."""
    for name in two:
        print(f"\n[gas] {name}{label}: 2 markets listed {two[name]:,}, 8 listed {eight[name]:,}", end="")
    print()
    assert {n: (two[n], eight[n]) for n in two if abs(eight[n] - two[n]) > 0.02 * two[n]} == {}


def test_gas__deleverager_ignores_listed_but_unused_markets():
    """The deleverager's checks read the bankrupt account's open markets (one
    word), not a position per listed market: with 8 markets listed instead of 2,
    a deleverage, a clawback and the take-over after it cost the same."""
    def measured(idle_markets):
        return {"deleverage": deleverage_gas(2, idle_markets),
                **dict(zip(("clawback", "take-over"), clawback_gas(2, idle_markets)))}

    assert_same_with_8_listed(measured(0), measured(6), " (2 counterparties)")
