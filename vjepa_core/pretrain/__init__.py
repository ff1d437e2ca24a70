"""Self-supervised V-JEPA pretraining: masks, the masked latent objective, diagnostics, the epoch loop.

`masks` draws multi-block 3-D masks; `objective` encodes the context tokens only and predicts the EMA
target encoder's embeddings at the masked positions; `diagnostics` measures collapse; `loop` trains,
checkpoints every epoch and writes a `save_pretrained` folder that every other command takes as --model.
"""
