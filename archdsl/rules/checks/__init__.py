"""The rule implementations; importing this package registers every rule."""

from . import cost, factorize, report, representation, topology, training  # noqa: F401
