"""Releases: a run leaves the lab as a folder the world's tools open (docs/architecture.md, "Contracts").

`writer.release_run` checks a run, then writes the folder atomically: the run as a plain transformers model
(`model`) or a PEFT adapter (`adapter`), the video processor as remote code (`hub_processor`), a model card
from the warehouse's evidence (`evidence`, `card`, `figures`), and optionally a Space (`space`). Releases are
written, never read back by vjepa-lab's training.
"""
