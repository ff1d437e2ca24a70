"""Releases: a run leaves the lab as a folder the world's tools open (docs/architecture.md, "Contracts").

- `writer`: `release_run(ReleaseRequest(...))`, the whole release: checks, then the folder written atomically.
- `model`: the run as a plain transformers `VJEPA2ForVideoClassification` (LoRA merged), its config
  (`num_frames`), its `VJEPA2VideoProcessor`, and the logit check against vjepa-lab's own model.
- `adapter`: the adapter-only form of a LoRA run (PEFT adapter + what it cannot carry + the base reference).
- `evidence`: the warehouse rows of a run and its matrix; test accuracy, interval, chance, matrix place.
- `card`: the model card (`huggingface_hub.ModelCard`) from that evidence; `figures`: its confusion matrix PNG.
- `space`: the Space folder (Gradio app from `space_template/app.py`, requirements, Space card, examples).

Releases are written, never read back by vjepa-lab's training.
"""
