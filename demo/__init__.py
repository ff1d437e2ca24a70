"""Gradio demo: classify a video with any saved checkpoint (`runner demo` or `python -m demo`).

`demo.service` is plain Python (listing, safe name resolution, cached loading, validation,
classification); `demo.app.build_demo(...) -> gr.Blocks` is the thin UI; `demo.__main__` launches it.
Gradio's analytics are switched off here, before anything imports gradio.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
