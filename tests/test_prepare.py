"""analyzer/prepare.py: the run's identity coords do not depend on the order of RUN_KEYS."""

import numpy as np

from analyzer import prepare
from latent_mi import contract as C

ATTRS = {
    "dataset": "digits",
    "arch": "vgg16",
    "activation": "tanh",
    "regularizer": "none",
    "seed": 3,
}


def test_run_coords_follow_the_names_not_the_order(monkeypatch):
    forward = prepare.run_coords(ATTRS)
    monkeypatch.setattr(C, "RUN_KEYS", tuple(reversed(C.RUN_KEYS)))
    backward = prepare.run_coords(ATTRS)
    assert forward.keys() == backward.keys() == {*C.RUN_KEYS, "noise_beta"}
    for key in forward:
        assert np.asarray(forward[key]).item() == np.asarray(backward[key]).item()
    assert forward["seed"] == 3 and isinstance(forward["seed"], int)
    assert forward["arch"].item() == "vgg16" and forward["noise_beta"] == 0.0


def test_run_coords_of_a_store_without_identity_attrs():
    coords = prepare.run_coords({})
    assert coords["seed"] == -1
    assert {coords[k].item() for k in C.RUN_KEYS if k != "seed"} == {"unknown"}
