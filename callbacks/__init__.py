"""Trainer callbacks of gvendi. Installed as ``gvendi.callbacks``: ``from gvendi.callbacks import GVendiCallback``."""

from .gvendi_callback import GVendiCallback

__all__ = ["GVendiCallback"]
