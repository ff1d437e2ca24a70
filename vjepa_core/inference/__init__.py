"""Using a trained checkpoint: classify videos (`predict`)."""
