"""The architecture's rules hold: `lint-imports` checks pyproject.toml's import-linter contracts
(who may import whom; see each package's __init__.py) and this test fails when one is broken."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert lint, "lint-imports is not installed: `.venv/bin/pip install -e '.[test]'`"
    done = subprocess.run(
        [lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, f"a contract is broken:\n{done.stdout}{done.stderr}"
