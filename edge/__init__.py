"""The in-store edge box: camera frames in, one ``Arrival`` per recognisable face out over MQTT."""
