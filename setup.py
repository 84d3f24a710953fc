"""One build step pyproject.toml can't say: the checkout's defaults go into the wheel.

`runbook.toml`, `templates/` and `.env.example` live at the repository root, where a checkout
uses them and where PRODUCT.md names them. An installed bot (a wheel: pipx, a Procfile host)
has no checkout, so the build copies them into the package as `bot/_defaults/`, and
`bot.packaged` reads them with importlib.resources. Copying at build time keeps one committed
copy of each file; an editable install has no `_defaults/` and reads the checkout's files.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DEFAULTS = ("runbook.toml", ".env.example", "templates")


def _default_files() -> list[Path]:
    """Every file to copy, relative to the root (a folder's regular files, sorted)."""
    files = []
    for name in DEFAULTS:
        path = ROOT / name
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [p.relative_to(ROOT) for p in found if "__pycache__" not in p.parts]
    return files


class BuildPy(build_py):
    """build_py, plus the checkout's defaults copied into bot/_defaults/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own files
        for relative in _default_files():
            target = Path(self.build_lib, "bot", "_defaults", relative)
            self.mkpath(str(target.parent))
            self.copy_file(str(ROOT / relative), str(target))


setup(cmdclass={"build_py": BuildPy})
