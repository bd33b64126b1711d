"""soma-ray: take part in the SOMA network on Ray."""

__version__ = "0.1.0"
