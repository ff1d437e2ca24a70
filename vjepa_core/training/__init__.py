"""Training a strategy's trainable part and scoring it.

- `features`: what the trainable part eats: pixel clips, or cached frozen-encoder tokens.
- `loop`: the training loop (`fit`) and evaluation (`evaluate`).
- `experiment`: one run end to end, spec -> `RunRecord` (the warehouse rows of the run).
- `joint`: which runs may train side by side on one pass of the cached tokens.
"""
