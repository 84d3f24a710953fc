"""Hide secrets in text before it leaves the runner: known values first, then known shapes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from dotenv import dotenv_values

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words and numbers

# A key is secret when it contains one of these anywhere (case-insensitive) ...
_STRONG_WORDS = (
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "PRIVATE",
    "APIKEY",
    "API_KEY",
    "ACCESSKEY",
    "ACCESS_KEY",
    "AUTHORIZATION",
    "DATABASE_URL",
    "DB_URL",
    "CONNECTION_STRING",
    "COOKIE",
)
# ... or one of these as a whole word of it (`DB_PASS`, `apiKey`, but not `AUTHOR` or `MONKEY`).
_WEAK_WORDS = frozenset({"KEY", "PASS", "PWD", "AUTH", "DSN"})
_KEY_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# The password runs to the last `@` before the host, so one holding `@` is masked whole.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<pw>[^\s/]+)(?=@)")
_ASSIGNMENT = re.compile(
    r"""(?P<q>["']?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P=q)(?P<sep>[ \t]*[:=][ \t]*)"""
    r"""(?P<val>"[^"\n]*"|'[^'\n]*'|[^\s"',;}]+)"""
)
_AUTH_SCHEMES = frozenset({"bearer", "basic", "token"})
_SLACK_TOKEN = re.compile(r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+")
_SLACK_WEBHOOK = re.compile(
    r"(?P<head>\bhttps?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/)"
    r"(?P<tok>[A-Za-z0-9/_-]+)"
)
_STRIPE_KEY = re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}")
# A private key: its BEGIN line is kept, the key itself and up to its END line are masked.
# Written in one line (JSON's "-----BEGIN …-----\\nMII…"), or over lines (see mask_lines).
_KEY_BEGIN = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----")
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_KEY_INLINE = re.compile(
    r"(?P<head>-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----)(?P<key>.*?)"
    r"(?P<end>-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)"
)
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=]+|[A-Za-z-]+:.*")  # base64, or a header (Proc-Type:)
_BEARER = re.compile(r"(?i)(?P<head>\bbearer\s+)(?P<tok>[A-Za-z0-9._~+/-]{8,}=*)")
_BASIC = re.compile(r"(?i)(?P<head>\bauthorization:\s*basic\s+)(?P<tok>[A-Za-z0-9+/]{4,}=*)")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b")
_BLOB_AFTER_WORD = re.compile(
    r"(?i)(?P<head>(?:token|secret|passw(?:or)?d|api[_-]?key)s?[\"']?"
    r"(?:[ \t]*[:=][ \t]*|[ \t]+(?:is[ \t]+)?)[\"']?)"
    r"(?P<tok>(?=[A-Za-z+/_.~-]*\d)[A-Za-z0-9+/_.~-]{16,}=*)"
)


def looks_secret(key: str) -> bool:
    """True when a variable or field name suggests its value is a secret."""
    upper = key.upper()
    if any(word in upper for word in _STRONG_WORDS):
        return True
    return any(word.upper() in _WEAK_WORDS for word in _KEY_WORDS.findall(key))


def _mask_assignment(match: re.Match[str]) -> str:
    value = match["val"]
    if not looks_secret(match["key"]) or value.lower() in _AUTH_SCHEMES:
        return match[0]
    quote = value[0] if value[0] in "\"'" else ""
    if value.strip("\"'") in ("", MASK):
        return match[0]
    return f"{match['q']}{match['key']}{match['q']}{match['sep']}{quote}{MASK}{quote}"


def _secret_parts(value: str) -> list[str]:
    """The value itself, each line of a multi-line value, and any password inside a URL."""
    parts = [value, *value.splitlines()]
    parts += [m["pw"] for m in _URL_PASSWORD.finditer(value)]
    return [p.strip() for p in parts]


class Masker:
    """Replaces known secret values and secret-shaped text with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Remember every secret value of at least four characters."""
        values = {p for s in secrets if s for p in _secret_parts(s)}
        self.secrets: tuple[str, ...] = tuple(
            sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=lambda v: (-len(v), v))
        )
        # Alternatives are tried in order, so longest first masks a secret containing another.
        self._known = re.compile("|".join(map(re.escape, self.secrets))) if self.secrets else None

    @classmethod
    def from_env_file(cls, path: str | Path) -> Masker:
        """A masker for every value in a `.env` file (none if it's absent)."""
        return cls(_env_file_secrets(Path(path)))

    def with_secrets(self, secrets: Iterable[str]) -> Masker:
        """A new masker that also hides these values."""
        return Masker((*self.secrets, *secrets))

    def with_env_files(self, paths: Iterable[str | Path]) -> Masker:
        """A new masker that also hides the secrets of these `.env` files (absent ones skipped)."""
        return self.with_secrets(s for p in paths for s in _env_file_secrets(Path(p)))

    def mask(self, text: str) -> str:
        """The text with every known secret value and secret-looking token replaced by `***`."""
        if not text:
            return text
        if "PRIVATE KEY" in text or "\n" in text:
            text = "\n".join(_key_blocks(text.split("\n"), False)[0])
        return self._mask_line(text)

    def mask_lines(self, lines: Iterable[str], in_key: bool = False) -> list[str]:
        """Mask lines of output, private-key blocks across lines included."""
        return [self._mask_line(line) for line in _key_blocks(list(lines), in_key)[0]]

    def stream(self) -> LineStream:
        """A masker for output arriving in batches: a key block may span two of them."""
        return LineStream(self)

    def _mask_line(self, text: str) -> str:
        text = _KEY_INLINE.sub(_mask_inline_key, text)
        if self._known is not None:
            text = self._known.sub(MASK, text)
        text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
        text = _SLACK_WEBHOOK.sub(lambda m: m["head"] + MASK, text)
        text = _SLACK_TOKEN.sub(MASK, text)
        text = _STRIPE_KEY.sub(MASK, text)
        text = _AWS_KEY_ID.sub(MASK, text)
        text = _ASSIGNMENT.sub(_mask_assignment, text)
        text = _BEARER.sub(lambda m: m["head"] + MASK, text)
        text = _BASIC.sub(lambda m: m["head"] + MASK, text)
        return _BLOB_AFTER_WORD.sub(lambda m: m["head"] + MASK, text)

    def __call__(self, text: str) -> str:
        """Same as `mask`."""
        return self.mask(text)


class LineStream:
    """Masks batches of lines of one output, remembering an open private-key block."""

    def __init__(self, masker: Masker) -> None:
        self.masker, self.in_key = masker, False

    def __call__(self, lines: Iterable[str]) -> list[str]:
        """The batch, masked."""
        masked, self.in_key = _key_blocks(list(lines), self.in_key)
        return [self.masker._mask_line(line) for line in masked]


def _mask_inline_key(match: re.Match[str]) -> str:
    if not match["key"].strip():
        return match[0]
    return f"{match['head']}{MASK}{match['end']}"


def _key_blocks(lines: list[str], in_key: bool) -> tuple[list[str], bool]:
    """Lines inside a private-key block become `***`; (lines, still inside a block)."""
    out = []
    for line in lines:
        begins = _KEY_BEGIN.search(line) and not _KEY_END.search(line)
        if in_key:
            ended = _KEY_END.search(line) is not None
            out.append(line[_KEY_END.search(line).start() :] if ended else MASK)
            in_key = not ended
        else:
            out.append(line)
            in_key = bool(begins)
    # Output that starts inside a block (a tail cut above BEGIN): mask up to its END.
    for index, line in enumerate(out):
        if _KEY_BEGIN.search(line):
            break
        if _KEY_END.search(line):
            for back in range(index - 1, -1, -1):
                if out[back] == MASK or not _KEY_BODY.fullmatch(out[back].strip()):
                    break
                out[back] = MASK
            break
    return out, in_key


def _env_file_secrets(path: Path) -> list[str]:
    """Every value in a `.env` file is a secret, whatever its key is called."""
    if not path.is_file():
        return []
    return [value for value in dotenv_values(path).values() if value]
