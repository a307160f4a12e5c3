"""Store health: metrics rolled up per store-hour and store-day, scored against the store's own
history and its peers, grouped into five sub-scores and an overall score (docs/HEALTH.md)."""
