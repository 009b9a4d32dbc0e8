"""The dataset contract.

A dataset class is registered through ``register_datasets`` and named in ``[data] type``. Its
constructor takes the dataset's own spec keys (``flatten``, ``path``...). Without loading
anything it reports ``sample_shape`` (per-sample input shape) and ``n_classes`` (0 for
real-valued or absent targets; None when the count is known only after loading, such as a
character vocabulary: ``load`` then sets ``Arrays.n_classes``), so specs validate and build
offline. ``load(data_dir)`` returns an ``engine.runtime.data.Arrays`` with float inputs in their natural
scale ([0, 1] for images) and int64 labels, or ``y_train = None`` for unlabeled data (trainers
and target kinds that need no labels, such as ``"inputs"``, use it); ``data_dir`` is the resolved root holding one folder per dataset (``mnist/``,
``fashion-mnist/``, ``semeion/``). Splitting, preprocessing and batching are the engine's job.
"""

from typing import ClassVar


class Dataset:
    name: ClassVar[str] = ""
    needs_files: ClassVar[bool] = True  # False for embedded data (scikit-learn's digits)

    @property
    def sample_shape(self):
        raise NotImplementedError

    @property
    def n_classes(self):
        return 0

    def load(self, data_dir):
        raise NotImplementedError
