"""E-shelf labels, cloud side: which label shows which product, and markdown prices for perishables.

Pure library code for now; the API routes and persistence are wired by the cloud's owner.
"""
