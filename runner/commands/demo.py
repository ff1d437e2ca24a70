"""`runner demo`: serve the Gradio demo over the checkpoints in the results folder (see `demo/`)."""

from __future__ import annotations

from demo.options import DemoOptions
from runner.app import app
from runner.options import flag_parameters, option_group, user_errors


@app.command()
@user_errors
@option_group(flag_parameters(DemoOptions), DemoOptions, "options")
def demo(options: DemoOptions | None = None) -> None:
    """Classify videos with any saved checkpoint in a Gradio app (upload, webcam or example clips).

    Example: runner demo --results results --port 7860
    """
    from demo.__main__ import serve

    serve(options or DemoOptions())
