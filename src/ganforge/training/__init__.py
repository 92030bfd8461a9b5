"""Training: setup from config, the generic loop, checkpoints, noise and optimizers."""

from ganforge.training.loop import Budget, Trainer
from ganforge.training.setup import Setup, build, pick_device

__all__ = ["Budget", "Trainer", "Setup", "build", "pick_device"]
