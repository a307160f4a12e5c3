"""E-shelf labels, cloud side: which label shows which product (``registry`` rules, ``labels``
rows), the flashes of a member's recommended products on arrival (``arrival``), and markdown
prices for perishables (``markdown``)."""
