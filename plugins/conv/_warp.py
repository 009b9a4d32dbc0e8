"""The compiled resampling pass of ``plugins.conv.augment``, in its own module so that loading the
plugin (``redes --help``, ``redes plugins``) does not import Numba."""

import numpy as np
from numba import njit


@njit(cache=True)
def warp_bilinear(x, affine, disp, out):
    """out[k, i, j] = bilinear read of x[k] (zero outside) at (r, s) = A_k (i - cy, j - cx) + t_k
    (+ disp[i, k, :, j] when disp is not empty); affine[k] = (a, b, t_r, d, e, t_s)."""
    n, h, w = x.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    has_disp = disp.shape[1] > 0
    for k in range(n):
        a, b, tr = affine[k, 0], affine[k, 1], affine[k, 2]
        d, e, ts = affine[k, 3], affine[k, 4], affine[k, 5]
        for i in range(h):
            yi = i - cy
            for j in range(w):
                xj = j - cx
                r = a * yi + b * xj + tr
                s = d * yi + e * xj + ts
                if has_disp:
                    r += disp[i, k, 0, j]
                    s += disp[i, k, 1, j]
                r0, s0 = np.floor(r), np.floor(s)
                fr, fs = r - r0, s - s0
                i0, j0 = int(r0), int(s0)
                v = 0.0
                if 0 <= i0 < h:
                    if 0 <= j0 < w:
                        v += (1.0 - fr) * (1.0 - fs) * x[k, i0, j0]
                    if 0 <= j0 + 1 < w:
                        v += (1.0 - fr) * fs * x[k, i0, j0 + 1]
                if 0 <= i0 + 1 < h:
                    if 0 <= j0 < w:
                        v += fr * (1.0 - fs) * x[k, i0 + 1, j0]
                    if 0 <= j0 + 1 < w:
                        v += fr * fs * x[k, i0 + 1, j0 + 1]
                out[k, i, j] = v
