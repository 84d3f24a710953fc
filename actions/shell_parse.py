"""What a bash script runs, read with a real bash grammar (tree-sitter-bash). No I/O.

`programs_in(script)` lists the external programs a rendered step calls: the name of every
simple command, wherever it sits (pipelines, `&&` / `||` lists, `if` / `for` / `while`
bodies, `$(…)` and backticks, also inside double quotes), and the program a wrapper such as
`env`, `sudo`, `exec` or `time` runs. Not programs: bash builtins and keywords, functions the
script defines, variable assignments, redirections (`2>&1`), heredoc bodies, arguments, and
names only known when the script runs (`"$cmd"`, `$(which x)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import tree_sitter
import tree_sitter_bash

# `compgen -b` and `compgen -k` of bash 5.2.
_BASH_BUILTINS = (
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue "
    "declare dirs disown echo enable eval exec exit export false fc fg getopts hash help "
    "history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly "
    "return set shift shopt source suspend test times trap true type typeset ulimit umask "
    "unalias unset wait"
)
_BASH_KEYWORDS = "if then else elif fi case esac for select while until do done in function "
_BASH_KEYWORDS += "time { } ! [[ ]] coproc"
BUILTINS = frozenset(_BASH_BUILTINS.split())
KEYWORDS = frozenset(_BASH_KEYWORDS.split())
# Commands that run the command in their arguments: name -> options that take a value.
_WRAPPERS: dict[str, frozenset[str]] = {
    "command": frozenset(),
    "exec": frozenset({"-a"}),
    "time": frozenset(),
    "env": frozenset({"-u", "-C", "-S", "--unset", "--chdir", "--split-string"}),
    "nohup": frozenset(),
    "nice": frozenset({"-n", "--adjustment"}),
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-R", "-T"}),
}
_EXPANSIONS = frozenset(
    {"simple_expansion", "expansion", "command_substitution", "process_substitution",
     "arithmetic_expansion"}
)  # fmt: skip


@cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


def parse(script: str) -> tree_sitter.Tree:
    """The script's syntax tree (tree-sitter-bash; parts it can't read become ERROR nodes)."""
    return _parser().parse(script.encode("utf-8"))


def syntax_error_line(script: str) -> int | None:
    """The 1-based line of the first part of `script` the grammar can't read, or None."""
    root = parse(script).root_node
    if not root.has_error:
        return None
    for node in _walk(root):
        if node.type == "ERROR" or node.is_missing:
            return node.start_point[0] + 1
    return root.start_point[0] + 1


def programs_in(script: str) -> set[str]:
    """The external programs `script` calls (see the module's docstring)."""
    root = parse(script).root_node
    functions = {
        _literal(name)
        for node in _walk(root)
        if node.type == "function_definition" and (name := node.child_by_field_name("name"))
    }
    found: set[str] = set()
    for node in _walk(root):
        if node.type == "command":
            found.update(_command_programs(node))
    return {p for p in found if p and p not in functions}


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _literal(node: tree_sitter.Node) -> str | None:
    """The word's value when it has no expansion in it (quotes and backslashes removed)."""
    if any(child.type in _EXPANSIONS for child in _walk(node)):
        return None
    text = node.text.decode("utf-8", "replace")
    if node.type == "raw_string":
        return text[1:-1]
    if node.type == "string":
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if node.type in ("word", "command_name", "concatenation"):
        if node.type == "command_name" and node.named_child_count == 1:
            return _literal(node.named_children[0])
        out, escaped = [], False
        for char in text:
            if char == "\\" and not escaped:
                escaped = True
                continue
            out.append(char)
            escaped = False
        return "".join(out).replace("'", "").replace('"', "")
    return None


def _command_programs(command: tree_sitter.Node) -> list[str]:
    """The program this simple command runs, and the one a wrapper runs in its arguments."""
    name = command.child_by_field_name("name")
    if name is None:  # only assignments and redirections
        return []
    words = [_literal(name)]
    words += [
        _literal(arg) if arg.type in ("word", "string", "raw_string", "concatenation") else None
        for arg in command.children_by_field_name("argument")
    ]
    found: list[str] = []
    while words and words[0] is not None:
        program, rest = words[0], words[1:]
        if program not in BUILTINS and program not in KEYWORDS and not program.startswith("./"):
            found.append(program)
        if program not in _WRAPPERS:
            break
        if program == "command" and rest and rest[0] in ("-v", "-V"):
            break  # `command -v x` asks whether x exists; it doesn't run it
        words = _after_options(rest, _WRAPPERS[program], assignments=program in ("env", "sudo"))
    return found


def _after_options(
    words: list[str | None], valued: frozenset[str], *, assignments: bool
) -> list[str | None]:
    """`words` from the wrapped command on: options (and their values) and, for env and
    sudo, NAME=value words skipped."""
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            return words[index + 1 :]
        if word is None or not (
            word.startswith("-") or (assignments and "=" in word and not word.startswith("="))
        ):
            return words[index:]
        index += 2 if word in valued else 1
    return []
