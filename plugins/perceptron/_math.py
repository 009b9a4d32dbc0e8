"""Math of the perceptron family, written once for both kernel targets."""


def threshold(z):
    # binary threshold unit: fires at z >= 0
    if z >= 0:
        return 1.0
    return 0.0


def perceptron_unit_sample(x, t, w, b, i, j, lr, lr_b):
    """Rosenblatt's rule for unit j on sample i: w[:, j] += lr * d * x[i], b[j] += lr_b * d with
    d = t - y (+1 false negative, -1 false positive, 0 correct); returns 1 on a mistake."""
    z = b[j]
    for f in range(x.shape[1]):
        z += x[i, f] * w[f, j]
    y = 1.0 if z >= 0 else 0.0  # threshold() inline: kernels call no other Python function
    d = t[i, j] - y
    if d == 0:
        return 0
    for f in range(x.shape[1]):
        w[f, j] += lr * d * x[i, f]
    b[j] += lr_b * d
    return 1


def row_mismatch(y, t, r):
    """1 when any output of row r differs from its target, else 0."""
    for j in range(y.shape[1]):
        if y[r, j] != t[r, j]:
            return 1
    return 0
