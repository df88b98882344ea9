"""Scenario files: the bundled ones are valid, bad ones get one line naming the field."""

import pytest

from perpclear.scenario import (
    ScenarioError,
    bundled_scenarios,
    load_scenario,
    parse_scenario,
    path_points,
    plan_traders,
)

BASE = """
name = "t"
[[markets]]
name = "ETH-PERP"
price = 2000
path = { kind = "gap", move_pct = -30 }
[traders]
count = 10
collateral = { min = 100, max = 1000 }
leverage = { min = 1, max = 5 }
[vault]
assets = 100
"""


def write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_bundled_scenarios_are_the_five_of_the_brief():
    names = {load_scenario(p).name for p in bundled_scenarios()}
    assert names == {"mild-dip", "gap-30", "flash-crash", "slow-bleed", "contagion"}
    assert len(load_scenario("contagion").markets) == 2


def test_a_bundled_scenario_loads_by_name_or_path():
    (path,) = [p for p in bundled_scenarios() if p.stem == "gap-30"]
    assert load_scenario("gap-30") == load_scenario(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (("count = 10", "count = 0"), "s.toml: traders.count: Input should be greater than or equal to 1"),
        (("count = 10", "count = 10\ncolour = 1"), "s.toml: traders.colour: Extra inputs are not permitted"),
        (("max = 5 }", "max = 12 }"), "s.toml: traders.leverage.max (12.0) must be below 1 / imr of ETH-PERP (10)"),
        (("max = 1000 }", "max = 10 }"), "s.toml: traders.collateral: max (10.0) is below min (100.0)"),
        (('kind = "gap"', 'kind = "moon"'), "s.toml: markets.0.path: Input tag 'moon' found using 'kind' does not match any of the expected tags"),
        (("move_pct = -30", "move_pct = -100"), "s.toml: markets.0.path.move_pct: Input should be greater than -100"),
        (("price = 2000", "price = 2000\nmmr_bps = 1000"), "s.toml: markets.0: mmr_bps (1000) must be below imr_bps (1000)"),
        (("assets = 100", "assets = -1"), "s.toml: vault.assets: Input should be greater than or equal to 0"),
        (('name = "t"', 'name = "a b"'), "s.toml: name: String should match pattern"),
        (("[vault]\nassets = 100", ""), "s.toml: vault: Field required"),
    ],
)
def test_a_bad_file_gets_one_line_naming_the_field(tmp_path, change, message):
    old, new = change
    assert old in BASE
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, BASE.replace(old, new)))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_unknown_market_in_the_trader_mix(tmp_path):
    with pytest.raises(ScenarioError, match=r"traders.markets: unknown market 'BTC'"):
        load_scenario(write(tmp_path, BASE.replace("count = 10", 'count = 10\nmarkets = { "BTC" = 1 }')))


def test_not_toml_and_missing_files(tmp_path):
    with pytest.raises(ScenarioError, match=r"^s.toml: not valid TOML"):
        load_scenario(write(tmp_path, "name = "))
    with pytest.raises(ScenarioError, match=r"^nope: no such scenario file \(bundled: contagion, flash-crash"):
        load_scenario("nope")


def test_price_paths():
    sc = parse_scenario(
        {
            "name": "p",
            "markets": [{"name": "A", "price": 100, "path": {"kind": "flash_crash", "depth_pct": 20, "down": 2, "rebound_pct": 50, "up": 2}}],
            "traders": {"count": 1, "collateral": {"min": 1, "max": 1}, "leverage": {"min": 1, "max": 1}},
            "vault": {"assets": 0},
        }
    )
    assert path_points(sc.markets[0].path, 100) == [90, 80, 85, 90]
    gap = parse_scenario({**sc.model_dump(), "markets": [{"name": "A", "price": 100, "path": {"kind": "gap", "move_pct": -30, "before": 1, "after": 2}}]})
    assert path_points(gap.markets[0].path, 100) == [100, 70, 70]
    freeze = {"kind": "freeze_jump", "frozen": 2, "move_pct": 50, "after": 1}
    fz = parse_scenario({**sc.model_dump(), "markets": [{"name": "A", "price": 100, "path": freeze}]})
    assert path_points(fz.markets[0].path, 100) == [None, None, 150]
    bleed = {"kind": "slow_bleed", "total_pct": 19, "blocks": 2}
    sb = parse_scenario({**sc.model_dump(), "markets": [{"name": "A", "price": 100, "path": bleed}]})
    assert [round(p, 9) for p in path_points(sb.markets[0].path, 100)] == [90, 81]


def test_traders_are_drawn_from_the_seed():
    sc = load_scenario("contagion")
    assert plan_traders(sc) == plan_traders(sc)
    other = plan_traders(sc.with_overrides(seed=sc.seed + 1))
    assert other != plan_traders(sc)
    plans = plan_traders(sc)
    unit = sc.unit
    assert all(500 * unit <= p.collateral <= 20_000 * unit for p in plans)
    both = [p for p in plans if len(p.legs) == 2]
    assert 0.3 < len(both) / len(plans) < 0.7  # both_share = 0.5
    longs = sum(p.is_long for p in plans) / len(plans)
    assert 0.6 < longs < 0.9  # long_share = 0.75
