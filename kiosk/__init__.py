"""The store's guide big-screen (PySide6): shows arriving members' cards to shop assistants."""
