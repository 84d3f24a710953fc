"""Where each placeholder sits in a step's bash, and which `psql` reads a script unguarded.

Every value is shell-quoted when it is substituted, which is only safe where the shell
reads a plain word: in double quotes the quotes become text (and `"{{ x }}"` around a value
holding `'` ends the quoting), in single quotes they become text, and in a here-document
the shell expands `$(…)` inside the value (`<<EOF`) or takes the quotes as text (`<<'EOF'`).
`placeholder_problems` reports those uses, with the fix; `psql_warnings` reports a `psql`
that reads SQL from stdin or `-f` without `ON_ERROR_STOP`, which exits 0 after errors.

This is a small lexer of bash's quoting (quotes, `$(…)`, backticks, `${…}`, `$((…))`,
comments, here-documents), not a parser: it only has to know the context of each character.
Lines are 1-based within the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_WORD_END = frozenset(" \t\n;&|()<>")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_PREFIXES = frozenset({"sudo", "env", "command", "exec", "time", "nice", "nohup"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash"})
_DASH_C = re.compile(r"-[a-zA-Z]*c[a-zA-Z]*")

_FIX = {
    "double": (
        "is inside double quotes, which undoes its shell quoting (a value holding $(…) "
        "would run): remove the double quotes around it; every placeholder is already "
        'quoted (write --name={{ x }} or name={{ x }} and then "$name")'
    ),
    "single": (
        "is inside single quotes, so its own quotes become part of the text: remove the "
        "single quotes around it; every placeholder is already quoted"
    ),
    "ansi": (
        "is inside $'…', so its own quotes become part of the text: remove the $'…' "
        "quotes around it; every placeholder is already quoted"
    ),
    "heredoc": (
        "is inside an unquoted here-document (<<EOF), where the shell expands $(…) in its "
        "value: set a variable before it (name={{ x }}) and write $name in the body, or pass "
        "it as an argument (psql -v name={{ x }} with :'name' in the SQL)"
    ),
    "quoted_heredoc": (
        "is inside a quoted here-document (<<'EOF'), whose text is used as written, so the "
        "value would arrive with its shell quotes: pass it as an argument instead (psql "
        "-v name={{ x }} with :'name' in the SQL) or export it as a variable"
    ),
    "param": (
        "is inside ${…}, where its quotes are not removed: assign it to a variable first "
        "(name={{ x }}) and use ${name…}"
    ),
    "arith": (
        "is inside $((…)), where a quoted value is a syntax error: assign it to a variable "
        "first (n={{ x }}) and use $((n …))"
    ),
    "comment": (
        "is inside a comment, where a value holding a newline would end the comment and run "
        "the rest as commands: remove the placeholder from the comment (write the name "
        "without braces)"
    ),
    "eval": (
        "is an argument of eval, which runs its value as code: call the command directly "
        "with the placeholder as its argument"
    ),
    "code": (
        "is the script of a shell's -c (or of trap), which runs its value as code: write the "
        "script in the runbook and pass the placeholder as its argument (sh -c '… \"$1\"' _ "
        "{{ x }})"
    ),
}
_PSQL_WARNING = (
    "psql reads SQL here ({how}) without -v ON_ERROR_STOP=1: it goes on after an error and "
    "exits 0, so a half-done restore counts as a success. Add -v ON_ERROR_STOP=1 (and "
    "--single-transaction for a restore)"
)


@dataclass(frozen=True)
class Use:
    """One placeholder and the bash context it is in."""

    line: int
    text: str  # e.g. "{{ vars.db_name }}"
    context: str  # plain, or a key of _FIX


@dataclass
class Command:
    """One simple command at the top level of the script (for the psql check)."""

    line: int
    words: list[str] = field(default_factory=list)
    stdin: list[str] = field(default_factory=list)  # how it gets stdin: pipe, <, heredoc


def placeholder_problems(script: str) -> list[tuple[int, str]]:
    """(line, message) for each placeholder whose bash context defeats its quoting."""
    return [
        (use.line, f"{use.text} {_FIX[use.context]}")
        for use in _Lexer(script).run().uses
        if use.context in _FIX
    ]


def psql_warnings(script: str) -> list[tuple[int, str]]:
    """(line, message) for each `psql` reading a script without ON_ERROR_STOP."""
    found = []
    for command in _Lexer(script).run().commands:
        words = _program_words(command.words)
        if not words or words[0].rsplit("/", 1)[-1] != "psql":
            continue
        how = list(command.stdin)
        if any(w in ("-f", "--file") or w.startswith(("--file=", "-f")) for w in words[1:]):
            how.append("-f")
        if how and not any("ON_ERROR_STOP" in word for word in words):
            found.append((command.line, _PSQL_WARNING.format(how=", ".join(dict.fromkeys(how)))))
    return found


def commands_only(script: str) -> str:
    """The script without its here-document bodies and with continued lines joined: text
    whose every line is shell code (for finding the programs a script calls)."""
    lexer = _Lexer(script).run()
    kept, start = [], 0
    for body_start, body_end in lexer.bodies_at:
        kept.append(script[start:body_start])
        start = body_end
    kept.append(script[start:])
    return "".join(kept).replace("\\\n", " ")


def _program_words(words: list[str]) -> list[str]:
    index = 0
    while index < len(words) and (_ASSIGNMENT.match(words[index]) or words[index] in _PREFIXES):
        index += 1
    return words[index:]


def _runs_as_code(words: list[str]) -> bool:
    """Whether the next word is run as code: the script of `sh -c`, or trap's action."""
    program = _program_words(words)
    if not program:
        return False
    name = program[0].rsplit("/", 1)[-1]
    if name == "trap":
        return len(program) == 1
    return name in _SHELLS and len(program) > 1 and bool(_DASH_C.fullmatch(program[-1]))


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.spans = {m.start(): m.end() for m in _PLACEHOLDER.finditer(text)}
        self.pos = 0
        self.line = 1
        self.uses: list[Use] = []
        self.commands: list[Command] = []
        self.heredocs: list[tuple[str, bool, bool]] = []  # delimiter, quoted, strip tabs
        self.bodies_at: list[tuple[int, int]] = []  # (start, end) of each body, delimiter too
        self.depth = 0  # > 0 inside $(…), `…` or <(…): no commands recorded there
        self.command: Command | None = None
        self.word: str | None = None

    def run(self) -> _Lexer:
        self.top(until=None)
        self.end_command()
        return self

    # --- helpers ---------------------------------------------------------------------------
    def peek(self, text: str) -> bool:
        return self.text.startswith(text, self.pos)

    def placeholder(self, context: str) -> bool:
        """Record a placeholder starting here (and skip it); False if there is none."""
        end = self.spans.get(self.pos)
        if end is None:
            return False
        text = self.text[self.pos : end]
        if context == "plain" and self.command is not None and self.command.words[:1] == ["eval"]:
            context = "eval"
        elif context == "plain" and self.command is not None and _runs_as_code(self.command.words):
            context = "code"
        self.uses.append(Use(self.line, " ".join(text.split()), context))
        self.line += text.count("\n")
        self.add(text)
        self.pos = end
        return True

    def add(self, text: str) -> None:
        if self.depth == 0:
            self.word = (self.word or "") + text
            if self.command is None:
                self.command = Command(self.line)

    def end_word(self) -> None:
        if self.word is not None and self.command is not None:
            self.command.words.append(self.word)
        self.word = None

    def end_command(self, piped: bool = False) -> None:
        self.end_word()
        if self.depth == 0 and self.command is not None and self.command.words:
            self.commands.append(self.command)
        self.command = Command(self.line, stdin=["a pipe"]) if piped and self.depth == 0 else None

    def newline(self) -> None:
        self.line += 1
        self.pos += 1
        if self.heredocs:
            self.bodies()

    # --- contexts ---------------------------------------------------------------------------
    def top(self, until: str | None) -> None:
        """Unquoted shell, up to `until` (`)` or a backtick) or the end of the text."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if self.placeholder("plain"):
                continue
            if until is not None and char == until:
                self.pos += 1
                return
            if char == "\n":
                if self.depth == 0:
                    self.end_command()
                else:
                    self.end_word()
                self.newline()
            elif char == "\\":
                if self.peek("\\\n"):
                    self.pos += 2
                    self.line += 1
                else:
                    self.add(self.text[self.pos : self.pos + 2])
                    self.pos += 2
            elif char == "#" and self.word is None:
                self.comment()
            elif char in " \t":
                self.end_word()
                self.pos += 1
            elif self.peek("&>"):
                self.end_word()
                self.pos += 2
            elif char in ";&|":
                double = self.peek(char * 2)
                self.pos += 2 if double else 1
                self.end_command(piped=char == "|" and not double)
                if char == "|" and self.peek("&"):
                    self.pos += 1
            elif char in "<>" and self.peek(char + "("):
                self.end_word()
                self.nested(2, ")")
            elif char == "<":
                self.redirect_in()
            elif char in ">()":
                self.end_word()
                self.pos += 2 if self.peek(">&") else 1
            else:
                self.word_part(char)

    def word_part(self, char: str) -> None:
        if char == "'":
            self.single()
        elif char == '"':
            self.double()
        elif self.peek("$'"):
            self.ansi()
        elif self.peek("$(("):
            self.arith()
        elif self.peek("$("):
            self.add("$(")
            self.nested(2, ")")
        elif self.peek("${"):
            self.param()
        elif char == "`":
            self.add("`")
            self.nested(1, "`")
        else:
            self.add(char)
            self.pos += 1

    def nested(self, skip: int, until: str) -> None:
        self.pos += skip
        self.depth += 1
        saved = (self.command, self.word)
        self.top(until=until)
        self.command, self.word = saved
        self.depth -= 1

    def comment(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] != "\n":
            if not self.placeholder("comment"):
                self.pos += 1

    def single(self) -> None:
        self.pos += 1
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] != "'":
            if self.placeholder("single"):
                continue
            self.line += self.text[self.pos] == "\n"
            self.pos += 1
        self.add(self.text[start : self.pos])
        self.pos += 1

    def ansi(self) -> None:
        self.pos += 2
        while self.pos < len(self.text) and self.text[self.pos] != "'":
            if self.placeholder("ansi"):
                continue
            self.line += self.text[self.pos] == "\n"
            self.pos += 2 if self.text[self.pos] == "\\" else 1
        self.add("$'…'")
        self.pos += 1

    def double(self) -> None:
        self.pos += 1
        while self.pos < len(self.text) and self.text[self.pos] != '"':
            char = self.text[self.pos]
            if self.placeholder("double"):
                continue
            if char == "\\":
                self.add(self.text[self.pos + 1 : self.pos + 2])
                self.line += self.peek("\\\n")
                self.pos += 2
            elif self.peek("$(("):
                self.arith()
            elif self.peek("$("):
                self.nested(2, ")")
            elif self.peek("${"):
                self.param()
            elif char == "`":
                self.nested(1, "`")
            else:
                self.add(char)
                self.line += char == "\n"
                self.pos += 1
        self.pos += 1

    def param(self) -> None:
        self.pos += 2
        depth = 1
        while self.pos < len(self.text) and depth:
            if self.placeholder("param"):
                continue
            char = self.text[self.pos]
            depth += {"{": 1, "}": -1}.get(char, 0)
            self.line += char == "\n"
            self.pos += 2 if char == "\\" else 1
        self.add("${…}")

    def arith(self) -> None:
        self.pos += 3
        depth = 2
        while self.pos < len(self.text) and depth:
            if self.placeholder("arith"):
                continue
            char = self.text[self.pos]
            depth += {"(": 1, ")": -1}.get(char, 0)
            self.line += char == "\n"
            self.pos += 1
        self.add("$((…))")

    def redirect_in(self) -> None:
        self.end_word()
        if self.peek("<<<"):
            self.pos += 3
            self.stdin("a here-string")
            return
        if not self.peek("<<"):
            self.pos += 1
            if not self.peek("&") and not self.peek(">"):
                self.stdin("<")
            return
        self.pos += 2
        strip = self.peek("-")
        self.pos += strip
        while self.peek(" ") or self.peek("\t"):
            self.pos += 1
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _WORD_END:
            self.pos += 1
        raw = self.text[start : self.pos]
        quoted = any(q in raw for q in "'\"\\")
        self.heredocs.append((re.sub(r"['\"\\]", "", raw), quoted, strip))
        self.stdin("a here-document")

    def stdin(self, how: str) -> None:
        if self.depth == 0:
            if self.command is None:
                self.command = Command(self.line)
            self.command.stdin.append(how)

    def bodies(self) -> None:
        """Skip the bodies of the here-documents opened on the line that just ended."""
        for delimiter, quoted, strip in self.heredocs:
            context = "quoted_heredoc" if quoted else "heredoc"
            start = self.pos
            while self.pos < len(self.text):
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos : end]
                if (line.lstrip("\t") if strip else line) == delimiter:
                    self.pos = min(end + 1, len(self.text))
                    self.line += 1
                    break
                for match in _PLACEHOLDER.finditer(line):
                    self.uses.append(Use(self.line, " ".join(match[0].split()), context))
                self.pos = min(end + 1, len(self.text))
                self.line += 1
            self.bodies_at.append((start, self.pos))
        self.heredocs = []
