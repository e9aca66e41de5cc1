"""The CycleGAN training loop and what it keeps: networks, schedule, checkpoints, logs."""
