"""Math of the noise layers, written once for both kernel targets."""


def gaussian_noise(x, noise, std):
    return x + std * noise


def stochastic_binary(x, u):
    # a Bernoulli(x) sample from one uniform: 1 with probability x for x in [0, 1]
    if u < x:
        return 1.0
    return 0.0
