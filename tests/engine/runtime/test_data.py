"""engine.runtime.data: data-dir lookup, checked downloads (never over the real network), split preparation."""

import hashlib
import io
import os
import urllib.error
import urllib.request

import numpy as np
import pytest

from engine import Dataset

from engine.runtime import data
from engine.runtime.data import Arrays, Splits, ensure_files, find_data_dir, prepare
from engine.errors import DataError

PAYLOAD = b"redes test payload\n" * 100
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any urlopen raises URLError unless a test installs its own fake."""
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(data, "_verified", set())
    return calls


def serve(monkeypatch, content_by_url):
    """Fake urlopen answering from a dict; unknown URLs fail like an offline host."""
    seen = []

    def fake(url, *args, **kwargs):
        seen.append(url)
        if url not in content_by_url:
            raise urllib.error.URLError("no route to host")
        return io.BytesIO(content_by_url[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return seen


# -- find_data_dir ---------------------------------------------------------------------------------
def test_find_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("REDES_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert find_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert find_data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert find_data_dir() == tmp_path / "env"
    monkeypatch.delenv("REDES_DATA")
    assert find_data_dir() == tmp_path / "xdg" / "redes"
    monkeypatch.setenv("REDES_DATA", "")  # empty means unset
    assert find_data_dir(None) == tmp_path / "xdg" / "redes"


def test_find_data_dir_home_cache_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("REDES_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(data.sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_data_dir() == tmp_path / ".cache" / "redes"
    assert not (tmp_path / ".cache").exists()  # lookup creates nothing


# -- ensure_files ----------------------------------------------------------------------------------
def test_ensure_files_present_file_is_checked_not_downloaded(tmp_path, no_network):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.bin").write_bytes(PAYLOAD)
    got = ensure_files(tmp_path, "set", {"a.bin": (PAYLOAD_MD5, ["https://example.invalid/"])})
    assert got == tmp_path / "set"
    assert no_network == []


def test_ensure_files_md5_checked_once_per_process(tmp_path, monkeypatch):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.bin").write_bytes(PAYLOAD)
    calls = []
    real = data.md5sum
    monkeypatch.setattr(data, "md5sum", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        ensure_files(tmp_path, "set", {"a.bin": (PAYLOAD_MD5, [])})
    assert len(calls) == 1


def test_ensure_files_existing_md5_mismatch_is_data_error(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.bin").write_bytes(PAYLOAD + b"x")
    with pytest.raises(DataError, match=r"a\.bin.*md5.*expected " + PAYLOAD_MD5):
        ensure_files(tmp_path, "set", {"a.bin": (PAYLOAD_MD5, [])})
    assert (tmp_path / "set" / "a.bin").read_bytes() == PAYLOAD + b"x"  # left for the user


def test_ensure_files_downloads_from_next_mirror(tmp_path, monkeypatch):
    seen = serve(monkeypatch, {"https://mirror2.test/a.bin": PAYLOAD})
    got = ensure_files(tmp_path, "set", {
        "a.bin": (PAYLOAD_MD5, ["https://mirror1.test/", "https://mirror2.test/"])})
    assert seen == ["https://mirror1.test/a.bin", "https://mirror2.test/a.bin"]
    assert (got / "a.bin").read_bytes() == PAYLOAD
    assert sorted(p.name for p in got.iterdir()) == ["a.bin"]  # no temporary left behind


def test_ensure_files_full_url_is_used_as_given(tmp_path, monkeypatch):
    url = "https://host.test/path/to/file.data"
    seen = serve(monkeypatch, {url: PAYLOAD})
    ensure_files(tmp_path, "set", {"a.bin": (PAYLOAD_MD5, [url])})
    assert seen == [url]


def test_ensure_files_download_checksum_mismatch(tmp_path, monkeypatch):
    serve(monkeypatch, {"https://m.test/a.bin": b"not the file"})
    with pytest.raises(DataError) as err:
        ensure_files(tmp_path, "set", {"a.bin": (PAYLOAD_MD5, ["https://m.test/"])})
    msg = str(err.value)
    assert "a.bin" in msg and "https://m.test/a.bin" in msg and "checksum mismatch" in msg
    assert not (tmp_path / "set" / "a.bin").exists()
    assert not (tmp_path / "set").exists()  # neither the bad temporary file nor an empty folder


def test_a_failed_download_leaves_no_empty_folders_but_keeps_existing_ones(tmp_path, no_network):
    with pytest.raises(DataError):
        ensure_files(tmp_path / "cache" / "redes", "mnist", {"t.gz": (PAYLOAD_MD5, ["https://x.test/"])})
    assert not (tmp_path / "cache").exists()
    (tmp_path / "semeion").mkdir()
    (tmp_path / "semeion" / "other.txt").write_text("kept")
    with pytest.raises(DataError):
        ensure_files(tmp_path, "semeion", {"semeion.data": (None, ["https://x.test/"])})
    assert (tmp_path / "semeion" / "other.txt").read_text() == "kept"


def test_ensure_files_offline_error_explains_manual_setup(tmp_path, no_network):
    urls = ["https://one.test/", "https://two.test/"]
    with pytest.raises(DataError) as err:
        ensure_files(tmp_path, "mnist", {"t.gz": (PAYLOAD_MD5, urls)})
    msg = str(err.value)
    assert no_network == ["https://one.test/t.gz", "https://two.test/t.gz"]
    for text in ("t.gz", "https://one.test/t.gz", "https://two.test/t.gz", "network disabled",
                 "--data-dir", "REDES_DATA", "mnist/t.gz", str(tmp_path)):
        assert text in msg
    assert "\n" not in msg  # one paragraph


def test_ensure_files_present_writes_nothing(tmp_path, monkeypatch):
    """Works as root too: every way ensure_files could write is made to fail."""
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.bin").write_bytes(PAYLOAD)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(data.tempfile, "mkstemp", refuse)
    monkeypatch.setattr(data.os, "replace", refuse)
    monkeypatch.setattr(data.Path, "mkdir", refuse)
    assert ensure_files(tmp_path, "set", {"a.bin": (PAYLOAD_MD5, [])}) == tmp_path / "set"
    with pytest.raises(DataError, match="cannot be created"):
        ensure_files(tmp_path, "other", {"b.bin": (PAYLOAD_MD5, ["https://x.test/"])})


def test_ensure_files_missing_file_in_unwritable_dir(tmp_path, monkeypatch, no_network):
    (tmp_path / "set").mkdir()
    monkeypatch.setattr(data.os, "access", lambda path, mode: False)
    with pytest.raises(DataError, match=r"b\.bin is missing .* is not writable.*--data-dir"):
        ensure_files(tmp_path, "set", {"b.bin": (PAYLOAD_MD5, ["https://x.test/"])})
    assert no_network == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, non-root")
def test_ensure_files_read_only_dir(tmp_path, no_network):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a.bin").write_bytes(PAYLOAD)
    folder.chmod(0o555)
    tmp_path.chmod(0o555)
    try:
        assert ensure_files(tmp_path, "set", {"a.bin": (PAYLOAD_MD5, [])}) == folder
        with pytest.raises(DataError, match="b.bin is missing .* is not writable"):
            ensure_files(tmp_path, "set", {"b.bin": (PAYLOAD_MD5, ["https://x.test/"])})
        with pytest.raises(DataError, match="cannot be created"):
            ensure_files(tmp_path, "other", {"b.bin": (PAYLOAD_MD5, [])})
    finally:
        tmp_path.chmod(0o755)
        folder.chmod(0o755)
    assert sorted(p.name for p in folder.iterdir()) == ["a.bin"]


# -- prepare ---------------------------------------------------------------------------------------
class Toy(Dataset):
    """Deterministic in-memory dataset: x[i] encodes i, so splits are checkable by value."""

    name = "toy"
    needs_files = False

    def __init__(self, n=100, n_test=20, features=6, n_classes=3, regression=False):
        self.n, self.n_test, self.features = n, n_test, features
        self._classes, self.regression = n_classes, regression
        self.loaded_from = []

    @property
    def sample_shape(self):
        return (self.features,)

    @property
    def n_classes(self):
        return 0 if self.regression else self._classes

    def load(self, data_dir):
        self.loaded_from.append(data_dir)
        rng = np.random.default_rng(1)
        total = self.n + self.n_test
        x = rng.normal(3.0, 2.0, (total, self.features)) * np.arange(1, self.features + 1)
        x[:, 0] = np.arange(total)
        y = (np.arange(total) % self._classes).astype(np.uint8)
        if self.regression:
            y = x[:, 1] * 0.5
        test = (x[self.n:], y[self.n:]) if self.n_test else (None, None)
        return Arrays(x[: self.n], y[: self.n], *test)


def test_prepare_end_validation_takes_last_samples():
    s = prepare(Toy(), validation=10)
    assert isinstance(s, Splits)
    assert s.x_train.shape == (90, 6) and s.x_val.shape == (10, 6) and s.x_test.shape == (20, 6)
    np.testing.assert_array_equal(s.x_train[:, 0], np.arange(90))
    np.testing.assert_array_equal(s.x_val[:, 0], np.arange(90, 100))
    np.testing.assert_array_equal(s.x_test[:, 0], np.arange(100, 120))
    assert s.sample_shape == (6,)


def test_prepare_types_and_contiguity():
    s = prepare(Toy(), validation=0.25, dtype=np.float64)
    for x in (s.x_train, s.x_val, s.x_test):
        assert x.dtype == np.float64 and x.flags.c_contiguous
    for y in (s.y_train, s.y_val, s.y_test):
        assert y.dtype == np.int64 and y.flags.c_contiguous
    s = prepare(Toy())
    assert s.x_train.dtype == np.float32 and s.x_val is None and s.y_val is None


def test_prepare_fraction_and_subset_sizes():
    s = prepare(Toy(n=100), validation=0.2, train_subset=30)
    assert len(s.x_train) == len(s.y_train) == 30 and len(s.x_val) == 20
    np.testing.assert_array_equal(s.x_train[:, 0], np.arange(30))  # first N after the split


def test_prepare_random_validation_is_seeded_and_disjoint():
    a = prepare(Toy(), validation=25, validation_from="random", seed=3)
    b = prepare(Toy(), validation=25, validation_from="random", seed=3)
    c = prepare(Toy(), validation=25, validation_from="random", seed=4)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_val[:, 0], c.x_val[:, 0])
    ids = np.concatenate([a.x_train[:, 0], a.x_val[:, 0]])
    np.testing.assert_array_equal(np.sort(ids), np.arange(100))
    assert not np.array_equal(a.x_val[:, 0], np.arange(75, 100))
    assert np.all(np.diff(a.x_train[:, 0]) > 0)  # remaining training order kept


def test_prepare_standardize_fits_on_train_only():
    s = prepare(Toy(), validation=30, preprocess="standardize", dtype=np.float64)
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1, atol=1e-10)
    raw = Toy().load(None)
    mu, sd = raw.x_train[:70].mean(axis=0), raw.x_train[:70].std(axis=0)
    np.testing.assert_allclose(s.x_val, (raw.x_train[70:] - mu) / sd, rtol=1e-10)
    np.testing.assert_allclose(s.x_test, (raw.x_test - mu) / sd, rtol=1e-10)
    assert abs(s.x_val[:, 0].mean()) > 1  # ids 70..99 lie far from the train mean


def test_prepare_standardize_keeps_image_shape():
    class Images(Toy):
        sample_shape = (1, 2, 3)

        def load(self, data_dir):
            a = super().load(data_dir)
            return Arrays(a.x_train.reshape(-1, 1, 2, 3), a.y_train, a.x_test.reshape(-1, 1, 2, 3),
                          a.y_test)

    s = prepare(Images(), preprocess="standardize")
    assert s.x_train.shape == (100, 1, 2, 3) and s.x_test.shape == (20, 1, 2, 3)


def test_prepare_pca_whiten_gives_identity_covariance():
    s = prepare(Toy(n=400, features=8), preprocess="pca_whiten", dtype=np.float64)
    assert s.x_train.shape == (400, 8)
    np.testing.assert_allclose(np.cov(s.x_train, rowvar=False), np.eye(8), atol=1e-8)
    k = prepare(Toy(n=400, features=8), preprocess="pca_whiten", pca_components=3, validation=50)
    assert k.x_train.shape == (350, 3) and k.x_val.shape == (50, 3) and k.x_test.shape == (20, 3)
    assert k.x_train.dtype == np.float32
    np.testing.assert_allclose(np.cov(k.x_train, rowvar=False), np.eye(3), atol=1e-4)
    assert data.output_shape((8,), "pca_whiten", 3) == (3,)
    assert data.output_shape((1, 2, 4), "pca_whiten") == (8,)
    assert data.output_shape((1, 2, 4), "standardize") == (1, 2, 4)


def test_prepare_regression_targets_stay_float():
    s = prepare(Toy(regression=True), dtype=np.float64)
    assert s.y_train.dtype == np.float64


def test_prepare_data_dir_only_resolved_for_file_datasets(monkeypatch, tmp_path):
    monkeypatch.setenv("REDES_DATA", str(tmp_path))
    embedded = Toy()
    prepare(embedded)
    files = Toy()
    files.needs_files = True
    prepare(files)
    assert embedded.loaded_from == [None] and files.loaded_from == [tmp_path]


def test_prepare_rejects_out_of_range_labels():
    class Bad(Toy):
        def load(self, data_dir):
            a = super().load(data_dir)
            a.y_train = a.y_train.astype(np.int64) + 5
            return a

    with pytest.raises(DataError, match="labels must lie in"):
        prepare(Bad())


@pytest.mark.parametrize("kwargs, message", [
    ({"validation": 100}, "must leave at least one"),
    ({"validation": -1}, "must not be negative"),
    ({"validation": 1.0}, r"in \[0, 1\)"),
    ({"validation": True}, "integer count or a fraction"),
    ({"validation": "10"}, "integer count or a fraction"),
    ({"validation_from": "start"}, "validation_from must be one of end, random"),
    ({"preprocess": "zca"}, "preprocess must be one of none, standardize, pca_whiten"),
    ({"train_subset": 0}, "train_subset must be a positive integer"),
    ({"train_subset": 2.5}, "train_subset must be a positive integer"),
    ({"train_subset": 95, "validation": 10}, "exceeds the 90 training samples"),
    ({"dtype": np.int32}, "dtype must be a floating type"),
    ({"preprocess": "pca_whiten", "pca_components": 7}, "between 1 and 6"),
    ({"preprocess": "pca_whiten", "pca_components": 1.5}, r"in \(0, 1\)"),
])
def test_prepare_invalid_values_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare(Toy(), **kwargs)
