"""Numbers about runs: classification metrics as warehouse rows, chance levels and paired tests."""
