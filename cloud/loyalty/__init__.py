"""Loyalty: a double-entry points ledger per member and brand pool, earn rules, redemption, expiry,
tiers. ``balances`` is the read side other features (the profile, the guide card) may import: it
imports nothing but the database."""
