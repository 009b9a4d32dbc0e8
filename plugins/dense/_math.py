"""Scalar math of the dense family, written once and compiled for both targets."""

import math


def sigmoid(z):
    # split by sign so exp never overflows
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_grad(y, dy):
    return dy * y * (1.0 - y)
