"""Arrivals: the MQTT ingest worker, visits, guide cards, assistants' feedback and Wi-Fi fusion."""
