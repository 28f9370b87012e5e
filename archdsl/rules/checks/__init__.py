"""The rule implementations; importing this package registers every rule."""

from . import cost, factorize, modern, report, representation, topology, training  # noqa: F401
