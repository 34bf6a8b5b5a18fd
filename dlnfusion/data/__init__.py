"""Datasets beyond Gaussian statistics: tasks built from samples and real images."""
from .images import MNIST_FILES, ImageSet, load_digits, load_mnist, read_idx, train_test_split
from .tasks import (NOISE_KEEP, NOISE_STD, FusionTask, digit_halves, noisy_digits, noisy_pairs,
                    split_views)
from .xor import xor_task
from .hierarchy import hierarchy, hierarchy_items

__all__ = ["ImageSet", "load_digits", "load_mnist", "read_idx", "train_test_split",
           "MNIST_FILES", "FusionTask", "noisy_pairs", "noisy_digits", "NOISE_STD",
           "NOISE_KEEP", "split_views", "digit_halves", "xor_task", "hierarchy", "hierarchy_items"]
from .completion import (low_rank_target, mask_from_order, nested_masks,  # noqa: E402
                         observed_mask, observed_order)
__all__ += ["low_rank_target", "observed_order", "mask_from_order", "observed_mask",
            "nested_masks"]
from .noise import PixelNoise, with_pixel_noise  # noqa: E402
__all__ += ["PixelNoise", "with_pixel_noise"]
