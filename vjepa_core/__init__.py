"""vjepa-lab's library: data, models, strategies, training, evaluation, checkpoints, warehouse.

Data flows one way: video files -> clips -> (cached) backbone tokens -> the strategy's trainable
part -> metrics + checkpoint -> warehouse. Nothing reads back up the chain.
"""

__version__ = "0.1.0"
