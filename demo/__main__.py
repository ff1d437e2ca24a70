"""`python -m demo [--checkpoints DIR] [--results DIR] [--warehouse PATH] [--host] [--port] [--share]
[--auth user:pass] [--max-mb] [--max-seconds]`: serve the demo; `runner demo` calls the same `serve`.

Paths follow the runner: checkpoints default to `<results>/checkpoints` (results: --results, env
VJEPA_RESULTS, else `results/`); the warehouse is --warehouse, env VJEPA_WAREHOUSE, else
`warehouse/vjepa.duckdb` (optional: without it the picker shows the manifests' metrics).
Bad arguments print one line and exit with code 2. Nothing is shared publicly unless --share.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from vjepa_core import paths
from vjepa_core.errors import UserError
from vjepa_core.inference.engines import ENGINE_ENV, engine_help

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_MB = 200.0
DEFAULT_MAX_SECONDS = 120.0


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """"user:pass" -> ("user", "pass"); the password may contain colons, neither part may be empty."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise UserError("--auth must look like user:password (both parts non-empty)")
    return user.strip(), password


def checkpoints_folder(checkpoints: Path | None, results: Path | None) -> Path:
    if checkpoints is not None:
        return Path(checkpoints)
    return paths.checkpoints_dir(results)


def warehouse_file(warehouse: Path | None) -> Path:
    return paths.warehouse_path(warehouse)


def serve(checkpoints: Path, *, warehouse: Path | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          share: bool = False, auth: tuple[str, str] | None = None, max_mb: float = DEFAULT_MAX_MB,
          max_seconds: float = DEFAULT_MAX_SECONDS, engine: str | None = None) -> None:
    """Build the demo over `checkpoints` and serve it until interrupted. Bad settings raise UserError."""
    from demo.service import MB, Limits
    from vjepa_core.inference.engines import check_engine_name

    if engine is not None:
        check_engine_name(engine)
    if not Path(checkpoints).is_dir():
        raise UserError(f"no checkpoints folder at {checkpoints}: train a run first "
                        f"(runner run --data synthetic --model tiny) or pass --checkpoints DIR")
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    limits = Limits(max_bytes=int(max_mb * MB), max_seconds=max_seconds)
    from demo.app import build_demo

    demo = build_demo(checkpoints, warehouse=warehouse, limits=limits, engine=engine)
    try:
        # Gradio's own upload cap stops truly huge files at the door; between the two limits the
        # service's clearer message applies.
        demo.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, share=share, auth=auth, max_file_size=2 * limits.max_bytes)
    except OSError as exc:
        raise UserError(f"cannot serve the demo on {host}:{port}: {str(exc).splitlines()[0]}") from exc


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see python -m demo --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="python -m demo", description="Classify videos with saved vjepa-lab checkpoints "
                       "in a Gradio app.")
    p.add_argument("--checkpoints", type=Path, help="checkpoints folder (default <results>/checkpoints)")
    p.add_argument("--results", type=Path, help="results folder (default env VJEPA_RESULTS, else results/)")
    p.add_argument("--warehouse", type=Path, help="DuckDB warehouse (default env VJEPA_WAREHOUSE, else "
                   "warehouse/vjepa.duckdb)")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--auth", help="require this login, as user:password")
    p.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB, help="largest accepted upload in MB")
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="longest accepted video")
    p.add_argument("--engine", help=f"{engine_help()} Default: env {ENGINE_ENV}, else auto.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        serve(checkpoints_folder(args.checkpoints, args.results), warehouse=warehouse_file(args.warehouse),
              host=args.host, port=args.port, share=args.share, auth=parse_auth(args.auth), max_mb=args.max_mb,
              max_seconds=args.max_seconds, engine=args.engine)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
