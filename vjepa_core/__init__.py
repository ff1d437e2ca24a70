"""vjepa-lab's library: data, models, strategies, training, evaluation, checkpoints, warehouse.

Data flows one way: video files -> clips -> (cached) backbone tokens -> the strategy's trainable
part -> metrics + checkpoint -> warehouse. Nothing reads back up the chain.
"""

import logging

__version__ = "0.1.0"

# When torchao is installed, transformers' quantizers import it, and torch >= 2.14 logs two deprecation
# warnings about its Enum constants on every start: noise above our one-line messages, not the user's concern.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
