"""The sandbox's runbook: the shipped runbook.toml with its values pointed at the sandbox."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable

_HEADER = re.compile(r"\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"(\s*)([A-Za-z0-9_-]+)\s*=(.*)$")


def rewrite_toml(
    text: str, tables: dict[str, dict[str, object]], checks: dict[str, Callable[[object], str]]
) -> str:
    """Set whole top-level `tables` (keys absent from them are dropped) and, in each
    `[[verify.check]]`, map the values of the keys in `checks` through those functions."""
    document = tomllib.loads(text)
    out: list[str] = []
    seen: set[str] = set()
    current, quote = "", ""
    for line in text.splitlines():
        if quote:  # inside a multi-line string
            quote = "" if quote in line else quote
            out.append(line)
            continue
        header, key = _HEADER.match(line), _KEY.match(line)
        if header:
            current = header[1]
            out.append(line)
            if current in tables:
                seen.add(current)
                present = document.get(current, {})
                added = {k: v for k, v in tables[current].items() if k not in present}
                out += [f"{k} = {toml_value(v)}" for k, v in added.items()]
            continue
        if key and current in tables:
            if key[2] not in tables[current]:
                continue
            if tomllib.loads(f"v ={key[3]}")["v"] != tables[current][key[2]]:
                line = f"{key[1]}{key[2]} = {toml_value(tables[current][key[2]])}"
        elif key and current == "verify.check" and key[2] in checks:
            value = tomllib.loads(f"v ={key[3]}")["v"]
            line = f"{key[1]}{key[2]} = {toml_value(checks[key[2]](value))}"
        elif not line.lstrip().startswith("#"):
            quote = next((q for q in ("'''", '"""') if line.count(q) % 2 == 1), "")
        out.append(line)
    for name in sorted(tables.keys() - seen):
        out += ["", f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in tables[name].items())]
    return "\n".join(out) + "\n"


def toml_value(value: object) -> str:
    """A TOML literal for a bool, number, string or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))  # a TOML basic string
