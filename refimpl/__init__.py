"""refimpl: a compact reference container engine speaking the Docker Engine API."""

__version__ = "0.1.0"
