"""The stratified train/test split for datasets without an official test set."""

import numpy as np


def check_test_size(test_size):
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise ValueError(f"test_size must be a fraction in (0, 1) or a sample count, "
                         f"got {test_size!r}.")
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size}.")
    if isinstance(test_size, int) and test_size < 1:
        raise ValueError(f"test_size as a sample count must be at least 1, got {test_size}.")
    return test_size


def stratified_split(x, y, test_size, seed):
    """(x_train, y_train, x_test, y_test): class proportions kept, shuffled by ``seed``."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return (np.ascontiguousarray(x_train), np.ascontiguousarray(y_train, np.int64),
            np.ascontiguousarray(x_test), np.ascontiguousarray(y_test, np.int64))
