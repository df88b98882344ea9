"""The pytest plugin, as another repository uses it: a test file that only
knows the fixtures, run by pytest in a separate process (``pytester``)."""


pytest_plugins = ["pytester"]

EXTERNAL_TEST = '''
def test_cascade_in_a_few_lines(make_cascade, assert_invariants):
    result = make_cascade("gap-30", traders=15, loss_policy="OPEN_INTEREST")
    assert_invariants(result)
    assert result.totals()["bankruptcies"] > 0


def test_my_own_crash(perpclear_system, perpclear_traders, perpclear_roles, assert_invariants):
    alice, bob = perpclear_traders(2, collateral=1_000)
    unit = 10**perpclear_system.decimals
    perpclear_system.open(alice, 0, 45 * 10**17, 2_000 * unit)  # 4.5 ETH long: 9,000 notional on 1,000
    perpclear_system.open(bob, 0, -10**18, 2_000 * unit)
    perpclear_system.set_marks({0: 1_750 * unit})  # -1,125: more than her margin
    assert perpclear_system.view("is_liquidatable", alice.address)
    events = perpclear_system.liquidate(alice.address, 0)
    assert [e.name for e in events].count("AccountBankrupt") == 1
    assert_invariants(perpclear_system)


def test_mark_and_liquidation_in_one_transaction(perpclear_system, perpclear_traders, assert_invariants):
    alice, bob = perpclear_traders(2, collateral=1_000)
    unit = 10**perpclear_system.decimals
    perpclear_system.open(alice, 0, 45 * 10**17, 2_000 * unit)
    perpclear_system.open(bob, 0, -10**18, 2_000 * unit)
    events = perpclear_system.run_keeper({0: 1_750 * unit}, [(bob.address, 0), (alice.address, 0)], 1)
    names = [e.name for e in events]
    assert names[0] == "PriceUpdated" and names.count("TargetSkipped") == 1 and "AccountBankrupt" in names
    assert_invariants(perpclear_system)


def test_broken_invariants_fail_loudly(make_cascade, assert_invariants):
    result = make_cascade("mild-dip", traders=3)
    result.invariants["conservation"] = "ledger identity off by 1 units"
    assert_invariants(result)
'''


def test_external_repository_uses_the_fixtures(pytester):
    pytester.makepyfile(test_external=EXTERNAL_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--perpclear-network", "boa")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*perpclear invariants broken:*", "*conservation: ledger identity off by 1 units*"])
