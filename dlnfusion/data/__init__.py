"""Datasets beyond Gaussian statistics: tasks built from samples and real images."""
