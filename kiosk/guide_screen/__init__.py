"""The PySide6 guide big-screen: cards in over MQTT, assistants' actions out."""
