"""The training loop of every method (the method plugin owns its phases) and what it keeps: networks,
schedule, checkpoints, logs."""
