"""Commands of this area register on `runner.cli.app` here."""

from runner.cli import app  # noqa: F401
