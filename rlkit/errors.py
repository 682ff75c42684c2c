"""Errors every room may raise: a missing optional package, named with the command that installs it."""

from __future__ import annotations

__all__ = ["MissingDependencyError"]


class MissingDependencyError(ImportError):
    """An optional package a feature needs is not installed.

    ``package`` is the PyPI name and ``install`` the command that fixes it; the CLI prints the message as
    one line (no traceback) and exits with status 2.
    """

    def __init__(self, feature: str, package: str, install: str | None = None) -> None:
        self.feature, self.package = feature, package
        self.install = install or f"pip install {package}"
        super().__init__(f"{feature}: the {package!r} package is not installed; install it with: {self.install}")
