"""Shared fixtures for the eval tests: a small synthetic RetouchEval set saved like `rlkit data build`."""

import pytest


@pytest.fixture(scope="session")
def retoucheval_dir(tmp_path_factory):
    from rlkit.data import build_retoucheval

    path = tmp_path_factory.mktemp("retoucheval")
    build_retoucheval(3, 0, size=40).save_to_disk(str(path))
    return path


@pytest.fixture(scope="session")
def retouch_samples(retoucheval_dir):
    from rlkit.eval import load_retouch_samples

    return load_retouch_samples(retoucheval_dir)
