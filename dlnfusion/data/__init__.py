"""Datasets beyond Gaussian statistics: tasks built from samples and real images."""
from .xor import xor_task

__all__ = ["xor_task"]
