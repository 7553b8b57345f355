"""Datasets: image folders, Fashion-MNIST, scikit-learn digits, and ways to split and mix them.

Everything is an :class:`ImageDataset`; open one with :func:`load_dataset`.
"""

from synthaug.data.cache import cache_dir, cache_root
from synthaug.data.catalog import BUILTIN_DATASETS, describe_builtin_datasets, load_dataset
from synthaug.data.dataset import ImageDataset, concat_datasets
from synthaug.data.folder import METADATA_FILE, FolderCheck, check_image_folder, load_image_folder, safe_join
from synthaug.data.splits import subsample_per_class, train_val_split

__all__ = [
    "BUILTIN_DATASETS",
    "METADATA_FILE",
    "FolderCheck",
    "ImageDataset",
    "cache_dir",
    "cache_root",
    "check_image_folder",
    "concat_datasets",
    "describe_builtin_datasets",
    "load_dataset",
    "load_image_folder",
    "safe_join",
    "subsample_per_class",
    "train_val_split",
]
