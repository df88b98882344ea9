"""Reports: the three files, and the HTML rendered by a real headless browser."""

import csv
import json
import shutil
import struct
import subprocess
import zlib

import pytest

from perpclear.cascade import run_cascade
from perpclear.engine import RevmEngine
from perpclear.report import write_report
from perpclear.scenario import POLICIES, load_scenario

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    sc = load_scenario("flash-crash")
    results = [run_cascade(sc.with_overrides(loss_policy=p), RevmEngine()) for p in POLICIES]
    return results, write_report(results, tmp_path_factory.mktemp("reports"))


def test_files(comparison):
    results, folder = comparison
    doc = json.loads((folder / "report.json").read_text())
    assert [r["policy"] for r in doc["runs"]] == ["EQUITY", "OPEN_INTEREST", "ADL"]
    spread = [c["fairness_spread_pp"] for c in doc["comparison"]]
    assert spread[0] < spread[1] and spread[0] < spread[2]  # pro rata by equity is the even one
    rows = list(csv.DictReader((folder / "charges.csv").open()))
    assert len(rows) == sum(len(r.settlements) + len(r.deleveraged) for r in results)
    for result in results:  # the rows of each policy add up to what its accounts were charged
        mine = [r for r in rows if r["policy"] == result.policy]
        assert sum(int(r["charge"]) for r in mine) == result.totals()["charged"]
    assert any(r["event"] == "Deleveraged" for r in rows)
    html = (folder / "report.html").read_text()
    assert "<script" not in html and "http" not in html.split("</title>")[1]  # self-contained, offline
    assert html.count('<svg class="chart"') == 1 + 3 * 4  # side by side + 4 plots per policy
    assert not list(folder.glob("*.tmp"))


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


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
def test_the_report_renders_in_headless_chromium(comparison, tmp_path):
    _, folder = comparison
    url = (folder / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<polyline") >= 6 and "Policies side by side" in dom.stdout
    shot = tmp_path / "shot.png"
    p = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=900,1400", url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and shot.is_file(), p.stderr[-2000:]
    width, height, channels, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (900, 1400)
    colors = {row[i : i + 3] for row in rows[::7] for i in range(0, len(row), channels * 5)}
    assert len(colors) > 20  # text, axes and coloured series, not a blank page
    blue = bytes.fromhex("2563eb")
    assert any(blue in row for row in rows), "no series drawn in the first colour"
