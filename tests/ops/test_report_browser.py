"""Reports: the three files, and the HTML rendered by a real headless browser."""

import csv
import json
import shutil
import struct
import subprocess
import zlib
from fractions import Fraction

import pytest

from perpclear.cascade import run_cascade
from perpclear.engine import RevmEngine
from perpclear.report import policy_figures, run_figures, write_report
from perpclear.scenario import POLICIES, load_scenario, plan_traders
from perpclear.units import EQUITY_SCALE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    sc = load_scenario("flash-crash")
    results = [run_cascade(sc.with_overrides(loss_policy=p), RevmEngine()) for p in POLICIES]
    return results, write_report(results, tmp_path_factory.mktemp("reports"))


def figure_count(results) -> int:
    return 1 + sum(len(run_figures(r)) for r in results)  # the comparison's, then each run's


def test_files(comparison):
    results, folder = comparison
    doc = json.loads((folder / "report.json").read_text())
    assert [r["policy"] for r in doc["runs"]] == ["EQUITY", "OPEN_INTEREST", "ADL", "PROFIT"]
    spread = [c["fairness_spread_pp"] for c in doc["comparison"]]
    assert spread[0] < min(spread[1:])  # pro rata by equity is the even one
    for run, result in zip(doc["runs"], results):  # what a replay without the chain needs
        assert run["parameters"]["name"] == "flash-crash" and run["parameters"]["loss_policy"] == run["policy"]
        assert len(run["openings"]) == sum(len(p.legs) for p in plan_traders(load_scenario("flash-crash")))
        assert all(o["buyer_fee"] > 0 and o["seller_fee"] > 0 for o in run["openings"])
        assert all({"loss_receivable", "funding_pool", "insurance_fees", "balance"} <= set(b["ledger"]) for b in run["blocks"])
        events = [e for k in ("liquidations", "bankruptcies", "socializations", "settlements", "deleveraged", "adl_runs",
                              "clawbacks", "clawback_runs") for e in run[k]]
        assert events and all(isinstance(e["tx"], int) and isinstance(e["log"], int) for e in events)
        order = sorted((e["tx"], e["log"]) for e in events)
        assert len(set(order)) == len(order)  # each (transaction, log index) names one event
        assert run["fairness"] and run["market_names"] == ["ETH-PERP"]
    adl = doc["runs"][2]
    assert all(len(r["candidates"]) >= 1 and r["surplus"] >= 0 for r in adl["adl_runs"])
    rows = list(csv.DictReader((folder / "charges.csv").open()))
    assert len(rows) == sum(len(r.settlements) + len(r.deleveraged) + len(r.clawbacks) for r in results)
    for result in results:  # the rows of each policy add up to what its accounts were charged
        mine = [r for r in rows if r["policy"] == result.policy]
        assert sum(int(r["charge"]) for r in mine) == result.totals()["charged"]
        assert sum(int(r["to_insurance"] or 0) for r in mine) == result.totals()["withheld_to_insurance"]
    assert any(r["event"] == "Deleveraged" for r in rows) and any(r["event"] == "ProfitCharged" for r in rows)
    html = (folder / "report.html").read_text()
    # self-contained: plotly.js inlined, nothing loaded from elsewhere
    assert "<script src" not in html and "<link" not in html and "cdn.plot.ly" not in html.split("<body>")[1]
    assert html.count('class="plotly-graph-div"') == figure_count(results)
    # one market: every run has its marks, open interest, vault, waterfall, rates
    # and fairness; ADL its prices
    assert [len(run_figures(r)) for r in results] == [6, 6, 7, 6]
    assert html.count('class="sortable"') == 4
    assert not list(folder.glob("*.tmp"))


def test_fairness_at_the_socialization__equity_is_even_on_the_demo():
    """What the README and `make demo` say: under EQUITY every account pays the same
    share of its equity at the moment of each socialization, up to rounding (a unit
    on an account of a few tokens); OPEN_INTEREST and ADL spread it by orders of
    magnitude more. The demo's scenario: the flash crash with 60 traders."""
    sc = load_scenario("flash-crash")
    sc = sc.with_overrides(traders={**sc.traders.model_dump(), "count": 60})
    figures = {p: policy_figures(run_cascade(sc.with_overrides(loss_policy=p), RevmEngine())) for p in POLICIES}
    assert figures["EQUITY"]["fairness_spread_pp"] < 0.001
    # ... so every payer lost the same part of its equity over the cascade
    assert figures["EQUITY"]["max_charge_pct_equity"] - figures["EQUITY"]["median_charge_pct_equity"] < 0.001
    assert figures["OPEN_INTEREST"]["fairness_spread_pp"] > 100 * figures["EQUITY"]["fairness_spread_pp"]
    assert figures["ADL"]["fairness_spread_pp"] > 100 * figures["EQUITY"]["fairness_spread_pp"]
    assert figures["PROFIT"]["fairness_spread_pp"] > 100 * figures["EQUITY"]["fairness_spread_pp"]
    # Measured on chain (equity before and after each bankruptcy), each share is
    # the event's logged rate times the account's equity, within rounding.
    result = run_cascade(sc, RevmEngine())
    assert len(result.fairness) == len(result.socializations) > 10
    for ev, social in zip(result.fairness, result.socializations):
        assert (ev["event"], ev["block"]) == ("LossSocialized", social["block"])
        for _, equity, share in ev["accounts"]:
            assert abs(share - Fraction(social["rate"] * equity, EQUITY_SCALE)) <= 2


def png_pixels(data: bytes):
    """Decodes an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def chromium(url: str, tmp_path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + str(tmp_path / "profile"),
             "--virtual-time-budget=20000"]
    return subprocess.run([CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=timeout)


def rendered(dom: str) -> tuple[int, str]:
    """Plotly's drawn figures in a dumped DOM, and the page's JavaScript errors."""
    errors = dom.split('id="errors"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    return dom.count('class="main-svg"'), errors.strip()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
def test_the_report_renders_in_headless_chromium(comparison, tmp_path):
    results, folder = comparison
    url = (folder / "report.html").resolve().as_uri()
    dom = chromium(url, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn, errors = rendered(dom.stdout)
    assert errors == ""
    assert drawn >= 2 * figure_count(results)  # plotly draws each figure in two layered SVGs
    assert "Policies side by side" in dom.stdout and "ETH-PERP: mark and liquidations" in dom.stdout
    shot = tmp_path / "shot.png"
    p = chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=900,1400")
    assert p.returncode == 0 and shot.is_file(), p.stderr[-2000:]
    width, height, channels, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (900, 1400)
    colors = {row[i : i + 3] for row in rows[::7] for i in range(0, len(row), channels * 5)}
    assert len(colors) > 20  # text, axes and coloured series, not a blank page
    blue = bytes.fromhex("2563eb")
    assert any(blue in row for row in rows), "no series drawn in the first colour"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
@pytest.mark.ci_scale
def test_a_report_of_1000_accounts_renders(tmp_path):
    """The page stays usable at 1,000 accounts: every chart drawn, no error, within
    the browser's time budget; its size is what the README states (under 8 MB)."""
    sc = load_scenario("flash-crash")
    sc = sc.with_overrides(traders={**sc.traders.model_dump(), "count": 1_000})
    result = run_cascade(sc, RevmEngine())
    assert len(result.accounts) > 1_000 and result.fairness
    folder = write_report([result], tmp_path / "reports")
    size = (folder / "report.html").stat().st_size
    assert size < 8 * 2**20, size
    dom = chromium((folder / "report.html").resolve().as_uri(), tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn, errors = rendered(dom.stdout)
    assert errors == "" and drawn >= 2 * len(run_figures(result))
    assert dom.stdout.count("<tr>") > 1_000  # the accounts table, whole
