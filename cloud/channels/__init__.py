"""Outbound channels to customers (SMS first): adapters in the shape of real providers' APIs, so a
real provider is a configuration change away, and local simulated providers they are tested against."""
