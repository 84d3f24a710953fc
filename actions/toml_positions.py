"""Line numbers for the tables and keys of a TOML document, which `tomllib` does not report.

`key_lines(text)` maps paths such as `("scenario", 1, "step", 0, "run")` (array-of-table
indices included) to the 1-based line where that table header or key appears. Inline-table
keys and array elements get their own entries. The text must already be valid TOML.
"""

from __future__ import annotations

KeyPath = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\n#")


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every table header, key and array element path to the line it starts on."""
    return _Scanner(text).scan()


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """The line of `path`, or of its closest enclosing entry that has one (0 if none)."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 0


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[KeyPath, int] = {}
        self.table_arrays: dict[KeyPath, int] = {}  # array-of-tables path -> entries so far

    def scan(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.text.startswith("[[", self.pos):
                table = self._header(array=True)
            elif self.text[self.pos] == "[":
                table = self._header(array=False)
            else:
                self._key_value(table)

    def _line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def _peek(self, length: int = 1) -> str:
        return self.text[self.pos : self.pos + length]

    def _skip_blank(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            else:
                return

    def _header(self, array: bool) -> KeyPath:
        line = self._line()
        self.pos += 2 if array else 1
        keys = self._dotted_key()
        self.pos += 2 if array else 1
        path: KeyPath = ()
        for key in keys[:-1]:
            path += (key,)
            if path in self.table_arrays:
                path += (self.table_arrays[path] - 1,)
        path += (keys[-1],)
        if array:
            index = self.table_arrays.get(path, 0)
            self.table_arrays[path] = index + 1
            self.lines.setdefault(path, line)
            path += (index,)
        self.lines[path] = line
        return path

    def _key_value(self, table: KeyPath) -> None:
        line = self._line()
        path = table + tuple(self._dotted_key())
        self.lines[path] = line
        self.pos += 1  # "="
        self._value(path)

    def _dotted_key(self) -> list[str]:
        keys = []
        while True:
            self._skip_blank(newlines=False)
            keys.append(self._simple_key())
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return keys
            self.pos += 1

    def _simple_key(self) -> str:
        quote = self._peek()
        if quote in "\"'":
            start = self.pos
            self._string()
            return self.text[start + 1 : self.pos - 1]  # escapes in keys are rare; close enough
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _BARE_KEY_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def _value(self, path: KeyPath) -> None:
        self._skip_blank(newlines=False)
        char = self._peek()
        if char in "\"'":
            self._string()
        elif char == "[":
            self._array(path)
        elif char == "{":
            self._inline_table(path)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1

    def _string(self) -> None:
        quote = self._peek()
        delimiter = quote * 3 if self._peek(3) == quote * 3 else quote
        self.pos += len(delimiter)
        while self.pos < len(self.text):
            if quote == '"' and self.text[self.pos] == "\\":
                self.pos += 2
            elif self.text.startswith(delimiter, self.pos):
                self.pos += len(delimiter)
                while len(delimiter) == 3 and self._peek() == quote:  # `""""` ends with a quote
                    self.pos += 1
                return
            else:
                self.pos += 1

    def _array(self, path: KeyPath) -> None:
        self.pos += 1
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self._peek() in ("]", ""):
                self.pos += 1
                return
            self.lines[(*path, index)] = self._line()
            self._value((*path, index))
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self.pos += 1
                index += 1

    def _inline_table(self, path: KeyPath) -> None:
        self.pos += 1
        while True:
            self._skip_blank(newlines=True)
            if self._peek() in ("}", ""):
                self.pos += 1
                return
            line = self._line()
            key_path = path + tuple(self._dotted_key())
            self.lines[key_path] = line
            self.pos += 1  # "="
            self._value(key_path)
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self.pos += 1
