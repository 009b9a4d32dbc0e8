"""Fixtures for the dataset tests: no network ever, and the real files in ../shared/data."""

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine.runtime import data


def _shared_data():
    """$REDES_DATA when set, else the nearest ``shared/data`` above this file (the repo's sibling
    ../shared/data), else None."""
    env = os.environ.get("REDES_DATA")
    if env:
        return Path(env).expanduser()
    for parent in Path(__file__).resolve().parents[3:]:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


SHARED_DATA = _shared_data()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every urlopen fails as if offline; the list records the URLs tried."""
    tried = []

    def offline(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tried


@pytest.fixture(scope="session")
def real_data():
    """A function ``folder(name) -> shared/data`` that skips with the reason when it is absent."""

    def folder(name):
        if SHARED_DATA is None or not (SHARED_DATA / name).is_dir():
            pytest.skip(f"real dataset folder '{name}' not found in a shared/data directory above "
                        f"{Path(__file__).resolve().parents[3]}")
        return SHARED_DATA

    return folder


@pytest.fixture(scope="module")
def offline_module():
    """Module-scoped twin of ``no_network`` for module-scoped loading fixtures."""
    with pytest.MonkeyPatch.context() as mp:
        def offline(url, *args, **kwargs):
            raise urllib.error.URLError("network disabled in tests")

        mp.setattr(urllib.request, "urlopen", offline)
        mp.setattr(data, "_verified", set())  # the real files' md5s are really checked
        yield
