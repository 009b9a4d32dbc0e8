"""``redes validate``: build every component of a spec and run one forward pass on zeros."""

import numpy as np

from .loop import build_run


def dry_run(spec, device="cpu"):
    """Return the output shape of one forward pass on a zero batch; raise RedesError if broken."""
    run = build_run(spec, device=device, load_data=False)
    net = run.network
    x = net.dev.to_device(np.zeros((2,) + net.input_shape, net.dtype))
    y, _ = net.forward(x, train=False)
    return tuple(net.dev.to_host(y).shape[1:])
