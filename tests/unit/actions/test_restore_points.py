"""Names of the copies a backup and a rollback keep, and where their placeholders may appear."""

import pytest

from actions.render import RenderContext, render
from actions.restore_points import backup_dir, failed_database, run_dir
from tests.unit.actions.test_runbook import only_problem, variant


def test_names_are_those_the_readme_documents():
    assert backup_dir("20260301_101500", 7) == "backup/20260301_101500-7"
    assert (
        run_dir("RB-3", 12, "20260301_113000") == "backup/failed_state/RB-3-run12-20260301_113000"
    )
    assert failed_database("ecom_os", "20260301_113000") == "ecom_os_failed_20260301_113000"


def test_a_long_database_name_is_shortened_to_fit_postgresql_keeping_the_suffix():
    name = failed_database("é" * 40, "20260301_113000")
    assert len(name.encode()) <= 63 and name.endswith("_failed_20260301_113000")
    assert name.startswith("é" * 20)  # whole characters only


def test_placeholders_render_quoted_from_the_run(tmp_path):
    from actions.runbook import load_runbook
    from tests.unit.actions.test_runbook import MINIMAL, write

    runbook = load_runbook(write(tmp_path, MINIMAL))
    ctx = RenderContext.at(runbook, incident_id="RB-2", run_id=5)
    assert render("{{ backup_dir }}", ctx) == f"backup/{ctx.ts}-5"
    assert render("{{ run_dir }}", ctx) == f"backup/failed_state/RB-2-run5-{ctx.ts}"
    assert render("{{ failed_db }}", ctx) == f"shop_failed_{ctx.ts}"


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("> {{ artifact }}", "> {{ run_dir }}/x", "only available in scenario steps"),
        ("> {{ artifact }}", "> {{ failed_db }}", "only available in scenario steps"),
        ("< {{ backup.db_dump }}", "< {{ backup_dir }}/x", "only available in backup steps"),
    ],
)
def test_each_placeholder_is_refused_where_it_has_no_meaning(tmp_path, old, new, says):
    problem = only_problem(tmp_path, variant(old, new))
    assert says in problem.message, problem


def test_failed_db_needs_the_database_named_in_vars(tmp_path):
    text = variant('db_name = "shop"', 'name = "shop"').replace("vars.db_name", "vars.name")
    text = text.replace("psql -d {{ vars.name }} < {{ backup.db_dump }}", "echo {{ failed_db }}")
    problem = only_problem(tmp_path, text)
    assert "add db_name to [vars]" in problem.message, problem
