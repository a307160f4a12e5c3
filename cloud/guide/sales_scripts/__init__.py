"""Sales scripts (话术): templates per situation, filled from the profile and the recommendations.

``templates`` validates and stores HQ's templates (built-in defaults in Chinese and English when HQ
has written none), ``situations`` reads which situations apply to a person and the values a
template may use, ``service.script_for`` picks and fills one (with a deterministic A/B split when
two variants are live), and ``outcomes`` counts what assistants did after each variant.
"""
