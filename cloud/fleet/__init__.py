"""The fleet: edge devices, the commands sent to them, and staged model-pack rollouts."""
