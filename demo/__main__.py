"""`python -m demo [options]`: serve the demo. `runner demo` takes the same options (`demo.options.DemoOptions`)
and calls the same `serve`; paths follow the runner's (flag, else environment variable, else default). Bad
arguments print one line and exit with code 2. Nothing is shared publicly unless --share.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from demo.options import MB, DemoOptions, add_arguments, parsed
from vjepa_core import paths
from vjepa_core.errors import UserError


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """"user:pass" -> ("user", "pass"); the password may contain colons, neither part may be empty."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise UserError("--auth must look like user:password (both parts non-empty)")
    return user.strip(), password


def serve(options: DemoOptions) -> None:
    """Build the demo as `options` say and serve it until interrupted. Bad settings raise UserError."""
    from demo.service import Limits
    from vjepa_core.inference.engines import check_engine_name, default_engine

    login = parse_auth(options.auth)  # a malformed --auth fails before anything is built
    check_engine_name(options.engine or default_engine())  # $VJEPA_ENGINE too: a typo fails now, not per video
    checkpoints = options.checkpoints or paths.checkpoints_dir(options.results)
    if not Path(checkpoints).is_dir():
        raise UserError(f"no checkpoints folder at {checkpoints}: train a run first "
                        f"(runner run --data synthetic --model tiny) or pass --checkpoints DIR")
    if not 0 < options.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {options.port}")
    limits = Limits(max_bytes=int(options.max_mb * MB), max_seconds=options.max_seconds)
    from demo.app import build_demo

    demo = build_demo(checkpoints, warehouse=paths.warehouse_path(options.warehouse), limits=limits,
                      engine=options.engine)
    try:
        # Gradio's own upload cap stops truly huge files at the door; between the two limits the
        # service's clearer message applies.
        demo.queue(default_concurrency_limit=1).launch(
            server_name=options.host, server_port=options.port, share=options.share, auth=login,
            max_file_size=2 * limits.max_bytes)
    except OSError as exc:
        raise UserError(f"cannot serve the demo on {options.host}:{options.port}: {str(exc).splitlines()[0]}") \
            from exc


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see python -m demo --help)\n")


def parser() -> argparse.ArgumentParser:
    return add_arguments(_OneLineParser(prog="python -m demo", description="Classify videos with saved vjepa-lab "
                                        "checkpoints in a Gradio app."), DemoOptions)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        serve(parsed(DemoOptions, args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
