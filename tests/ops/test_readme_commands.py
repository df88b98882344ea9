"""Every command the README shows exists, with every option it names.

The README is where a newcomer starts: a renamed option or script must fail
here, not in their shell. Each `ape run SCRIPT ...`, `perpclear COMMAND ...` and
`make TARGET` mentioned is collected; the script or command must answer
`--help` listing each `--option` the README gives it, and the make target
must exist. (Running them for real is the job of the tests of each command.)
"""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# A command runs to the end of its code span, table cell or line; a trailing
# backslash continues it on the next line.
TEXT = README.replace("\\\n", " ")


def mentions(prefix: str) -> dict[str, set[str]]:
    """name -> the --options the README passes to it."""
    found: dict[str, set[str]] = defaultdict(set)
    for name, rest in re.findall(rf"(?:\.venv/bin/)?{prefix} ([a-z][\w-]*)([^`|\n]*)", TEXT):
        found[name] |= set(re.findall(r"(--[a-z][\w-]*)", rest))
    return found


def test_readme_ape_scripts_and_their_options_exist():
    scripts = mentions("ape run")
    assert set(scripts) == {"deploy", "demo", "cascade", "compare", "audit"}, scripts
    ape = str(Path(sys.executable).with_name("ape"))
    for script, options in scripts.items():
        p = subprocess.run([ape, "run", script, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert p.returncode == 0, (script, p.stderr[-1000:])
        missing = {o for o in options if o not in p.stdout}
        assert not missing, f"README passes {sorted(missing)} to `ape run {script}`, which has no such option"


def test_readme_perpclear_commands_and_their_options_exist():
    commands = mentions("perpclear")
    assert {"run", "scenarios", "check", "typed-data"} <= set(commands), commands
    for command, options in commands.items():
        p = subprocess.run([sys.executable, "-m", "perpclear.cli", command, "--help"], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
        assert p.returncode == 0, f"README shows `perpclear {command}`: {p.stderr[-500:]}"
        missing = {o for o in options if o not in p.stdout}
        assert not missing, f"README passes {sorted(missing)} to `perpclear {command}`, which has no such option"


def test_readme_make_targets_exist():
    targets = set(re.findall(r"`make ([a-z][\w-]*)", README)) | set(re.findall(r"^make ([a-z][\w-]*)", README, re.M))
    assert {"demo", "test", "bench"} <= targets
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    assert targets <= defined, f"README names make targets the Makefile lacks: {sorted(targets - defined)}"
