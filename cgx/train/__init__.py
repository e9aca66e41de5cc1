"""The training loop of every method and what it keeps: networks, schedule, checkpoints, logs."""
