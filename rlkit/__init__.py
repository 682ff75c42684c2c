"""rlkit: train and evaluate image-retouching agents with reinforcement learning."""

__version__ = "0.1.0"
