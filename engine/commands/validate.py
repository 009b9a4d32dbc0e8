"""``redes validate``: build every component of a spec and run one forward pass on zeros."""

import numpy as np

from engine.runtime.loop import build_run


def dry_run(spec, device="cpu", data_dir=None):
    """Return the output shape of one forward pass on a zero batch; raise RedesError if broken.

    With ``data_dir`` the dataset is loaded from it too (as ``redes run`` would load it), which
    checks that the files are there and that the network takes its samples and classes.
    """
    run = build_run(spec, device=device, load_data=data_dir is not None, data_dir=data_dir)
    net = run.model
    x = net.dev.to_device(np.zeros((2,) + net.input_shape, net.dtype))
    y, _ = net.forward(x, train=False)
    return tuple(net.dev.to_host(y).shape[1:])
