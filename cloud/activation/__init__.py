"""Activation: marketing consent per channel, campaigns with holdout groups, the sender over the
channel adapters (``cloud.channels``), and measured effect (docs/ACTIVATION.md)."""
