"""Weight initialisers as registered names (``init = "he_normal"`` on a layer).

An initialiser is a function ``f(rng, shape, fan_in, fan_out) -> float64 ndarray``; decorate it
with ``@initializer("name")`` and register it through ``register_initializers``.
"""


def initializer(name):
    def mark(fn):
        fn.name = name
        return fn

    return mark
