"""perpclear: on-chain perp clearing prototype (Vyper contracts + Python tooling)."""

__version__ = "0.1.0"
