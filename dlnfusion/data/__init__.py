"""Datasets beyond Gaussian statistics: tasks built from samples and real images."""
from .images import MNIST_FILES, ImageSet, load_digits, load_mnist, read_idx, train_test_split
from .tasks import NOISE_KEEP, NOISE_STD, FusionTask, noisy_digits, noisy_pairs
from .xor import xor_task
from .hierarchy import hierarchy, hierarchy_items

__all__ = ["ImageSet", "load_digits", "load_mnist", "read_idx", "train_test_split",
           "MNIST_FILES", "FusionTask", "noisy_pairs", "noisy_digits", "NOISE_STD",
           "NOISE_KEEP", "xor_task", "hierarchy", "hierarchy_items"]
