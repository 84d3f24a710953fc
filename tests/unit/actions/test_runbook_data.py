"""The data-truth fields of the runbook: manifest_dsn, compare_data, `manifest = true` checks."""

from __future__ import annotations

import pytest

from actions.manifest import build_manifest, compare_manifests, describe
from actions.model import CompareData
from actions.runbook import check_runbook, load_runbook
from tests.unit.actions.test_runbook import MINIMAL, only_problem, variant, write

MANIFEST = ("[backup]\n", '[backup]\nmanifest_dsn = "postgresql://u@h/{{ vars.db_name }}"\n')
COMPARE = (
    'title = "Database migration failure"\n',
    'title = "Database migration failure"\n'
    'compare_data = { failed = "{{ vars.db_name }}_failed_{{ ts }}", '
    'restored = "postgresql://u@h/{{ vars.db_name }}" }\n',
)


def test_the_fields_load_into_the_model(tmp_path):
    text = MINIMAL.replace(*MANIFEST).replace(*COMPARE)
    text = text.replace('run = "npm run build"', "manifest = true")
    runbook = load_runbook(write(tmp_path, text))
    assert runbook.manifest_dsn == "postgresql://u@h/{{ vars.db_name }}"
    assert runbook.scenarios[0].compare_data == CompareData(
        "{{ vars.db_name }}_failed_{{ ts }}", "postgresql://u@h/{{ vars.db_name }}", 18
    )
    assert runbook.checks[0].kind == "manifest"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            MINIMAL.replace('run = "npm run build"', "manifest = true"),
            25,
            "a manifest check needs `[backup] manifest_dsn`",
        ),
        (
            MINIMAL.replace(*MANIFEST).replace('run = "npm run build"', "manifest = false"),
            26,
            "manifest must be true",
        ),
        (
            MINIMAL.replace(*MANIFEST).replace(
                'run = "npm run build"', 'manifest = true\nexpect = "1"'
            ),
            27,
            "expect is not used by a manifest check",
        ),
        (
            variant("[backup]\n", '[backup]\nmanifest_dsn = "{{ vars.nope }}"\n'),
            9,
            "unknown placeholder {{ vars.nope }}",
        ),
        (
            variant("[backup]\n", '[backup]\nmanifest_dsn = " "\n'),
            9,
            "manifest_dsn must not be empty",
        ),
        (
            variant(COMPARE[0], COMPARE[0] + 'compare_data = "shop_failed"\n'),
            17,
            "compare_data must be a table",
        ),
        (
            variant(COMPARE[0], COMPARE[0] + 'compare_data = { failed = "x" }\n'),
            17,
            "compare_data needs `restored`",
        ),
        (
            variant(COMPARE[0], COMPARE[0] + 'compare_data = { failed = "x", restored = "y" }\n'),
            17,
            "at least one of failed / restored must be a DSN",
        ),
        (
            variant(
                COMPARE[0],
                COMPARE[0] + 'compare_data = { failed = "x", restored = '
                '"{{ vars.db_url }}", kept = "z" }\n',
            ),
            17,
            "unknown key 'kept'",
        ),
    ],
)
def test_bad_fields_are_named_with_their_line(tmp_path, text, line, message):
    problems = check_runbook(write(tmp_path, text))
    assert any(p.line == line and message in p.message for p in problems), problems


def test_an_unknown_placeholder_in_compare_data_is_one_problem(tmp_path):
    text = variant(
        COMPARE[0],
        COMPARE[0] + 'compare_data = { failed = "{{ ts2 }}", restored = "postgresql://h/x" }\n',
    )
    problem = only_problem(tmp_path, text)
    assert problem.line == 17 and "unknown placeholder {{ ts2 }}" in problem.message


def _table(name, rows, columns=(("id", "integer"),), constraints=()):
    return {
        "name": name,
        "rows": rows,
        "constraints": list(constraints),
        "indexes": [],
        "columns": [{"name": n, "type": t, "not_null": True, "default": None} for n, t in columns],
    }


def test_the_manifest_comparison_names_every_table_that_differs():
    backup = build_manifest(
        "shop",
        [
            _table("orders", 10),
            _table("audit", 3),
            _table("a", 1),
            _table("b", 1, constraints=["pk PRIMARY KEY (id)"]),
        ],
    )
    restored = build_manifest(
        "shop",
        [
            _table("orders", 9),
            _table("extra", 0),
            _table("a", 1, (("id", "bigint"),)),
            _table("b", 1),
        ],
    )
    found = compare_manifests(backup, restored)
    assert [(d.table, d.what) for d in found] == [
        ("a", "columns"),
        ("audit", "missing"),
        ("b", "fingerprint"),
        ("extra", "extra"),
        ("orders", "rows"),
    ]
    passed, detail = describe(found, backup)
    assert not passed and detail.startswith("5 tables differ from the backup: ")
    assert "audit: missing (the backup had 3 rows)" in detail
    assert "orders: 9 rows, the backup had 10" in detail and "column id is bigint" in detail
    assert describe(compare_manifests(backup, backup), backup)[0] is True
