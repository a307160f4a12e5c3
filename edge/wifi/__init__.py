"""Wi-Fi probe capture on the edge box: sources -> keyed observations -> presence and footfall.

Raw MACs exist only inside the parsers (``frames`` for 802.11 captures, ``sensorfeed`` for
commercial sensors); everything downstream sees ``Observation`` objects carrying a device key.
"""
