"""The store's ESL gateway: label commands from MQTT, bitmaps rendered here, an OpenEPaperLink AP drives the tags."""
