"""The shipped files (default runbook, .env.example, templates) and an operator's overrides."""

from __future__ import annotations

import re
from pathlib import Path

from bot import packaged
from bot.comms.render import Text, render
from tests.unit.comms.test_render import notice, postmortem

REPO = Path(__file__).resolve().parents[2]


def test_a_checkout_reads_the_files_where_they_are_committed():
    assert packaged.default_runbook() == REPO / "runbook.toml"
    assert packaged.env_example() == REPO / ".env.example"
    assert packaged.templates() == REPO / "templates"


def test_env_example_has_every_setting_the_bot_reads_each_with_a_comment():
    read = set(re.findall(r'get\(\s*"([A-Z_]+)"', (REPO / "bot" / "settings.py").read_text()))
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.M))
    lines = packaged.env_example().read_text().splitlines()
    named = {}
    for number, line in enumerate(lines):
        found = re.match(r"#? ?([A-Z_]+)=", line)
        if found:
            named[found[1]] = number
    assert read and set(named) == read | documented
    for name, number in named.items():  # the line above says what it is
        above = lines[number - 1]
        assert above.startswith("# ") and not re.match(r"# [A-Z_]+=", above), name


def test_templates_beside_the_runbook_override_the_shipped_ones_file_by_file(tmp_path):
    runbook = tmp_path / "runbook.toml"
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "maintenance_notice.md.j2").write_text(
        "## Our notice\n{{ project }} for {{ reason }}\n"
    )
    ours = render("maintenance_notice.md.j2", notice(reason=Text("<!channel>")),
                  target="slack", runbook=runbook)  # fmt: skip
    assert ours == "*Our notice*\nWMS for &lt;!channel&gt;\n"  # user text still made inert
    shipped = render("maintenance_notice.md.j2", notice(), target="slack")
    assert "System Maintenance Notice" in shipped
    assert "System Maintenance Notice" in render(
        "maintenance_notice.md.j2", notice(), target="slack", runbook=tmp_path / "x" / "r.toml"
    )
    # the post-mortem has no override there: the shipped one is used
    assert render("postmortem.md.j2", postmortem(), target="markdown", runbook=runbook) == (
        render("postmortem.md.j2", postmortem(), target="markdown")
    )
