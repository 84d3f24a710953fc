"""A placeholder given to `sh -c` or `trap` is run as code, like one given to eval: the
runbook check rejects it (it accepted it, and a var holding $(touch PWNED) ran)."""

from __future__ import annotations

import pytest

from actions.runbook import check_runbook
from tests.unit.actions.test_runbook_quoting import (
    ACCEPTED,
    PAYLOADS,
    run_scenario,
    runbook_text,
    write,
)

AS_CODE = [
    "bash -c {{ vars.x }}",
    "sh -c {{ vars.x }}",
    "env LC_ALL=C /bin/bash -lc {{ vars.x }}",
    "trap {{ vars.x }} EXIT",
]


@pytest.mark.parametrize("run", AS_CODE)
def test_a_placeholder_run_as_code_by_a_shell_or_trap_is_rejected(tmp_path, run):
    [problem] = check_runbook(write(tmp_path, runbook_text(run)))
    assert problem.line == 15 and not problem.warning, problem
    assert "runs its value as code" in problem.message


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_a_placeholder_passed_as_an_argument_to_sh_c_is_still_accepted(tmp_path, payload):
    path = write(tmp_path, runbook_text("sh -c 'printf %s \"$1\"' _ {{ vars.x }}", payload))
    assert check_runbook(path) == []
    ended = await run_scenario(path)
    assert ended.succeeded and ended.output_tail == payload.rstrip("\n")
    assert not (tmp_path / "app" / "PWNED").exists()
    assert ACCEPTED  # the shared accepted forms stay accepted (test_runbook_quoting)
