"""Staged model-pack rollouts: a pack goes to a few canary stores, their telemetry is compared with
their own past and with the other stores, and the pack is promoted to every store or rolled back."""
