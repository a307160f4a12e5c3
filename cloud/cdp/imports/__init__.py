"""Channel exports into canonical members and orders: adapters, cleaning, quarantine, import."""
