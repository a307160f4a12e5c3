"""Recommendations for the guide card: repurchase due, bought together, new arrivals, best sellers.

``model.build_model`` precomputes everything that does not depend on the person (catalogue,
popularity, co-occurrence, each store's assortment) in one batch; ``rank.recommend`` is a pure
function of that model and one person's purchase lines, so an arrival costs one history read and a
few dictionary look-ups. ``service.for_card`` is what the card builder calls.
"""
