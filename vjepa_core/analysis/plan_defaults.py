"""What `runner plan` asks when nobody says otherwise: kept apart from the planner, which needs scipy, so that the
CLI can show these defaults in its help without importing it."""

from __future__ import annotations

DIFFERENCES = (0.05, 0.10)  # accuracy differences to detect
SEEDS = (1, 2, 3, 5)        # seed counts to plan for
DRAWS = 20_000              # simulated validation sets, where no closed form exists
ACCURACY = 0.8              # the best configuration's validation accuracy when a study does not say
