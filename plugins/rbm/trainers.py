"""Contrastive divergence trainers for one ``rbm`` layer: CD-k and persistent CD."""

import numpy as np

from engine import Trainer
from engine.errors import SpecError
from engine.runtime import device as devices
from engine.runtime.regularize import Regularizer

KERNELS = devices.kernel_modules(__package__)
EXACT_MAX_UNITS = 20  # the exact log-likelihood enumerates 2^units binary states
RNG_STATES = 4096  # xoroshiro128+ generators on the run's device (one CUDA thread each)
EVAL_ROWS = 2048
TRAIN_ROWS = 10000  # the "train" monitors look at the first rows only (an epoch-time budget)
PLL_ROWS, PLL_WORK = 500, 1 << 23  # pseudo-log-likelihood: n_visible x units softplus per row


class ContrastiveDivergence(Trainer):
    """CD-k (Hinton 2002) on the stage's single ``rbm`` layer.

    Per batch v0 (n rows): h0 = P(h|v0); k steps of block Gibbs sampling from v0 give vk and
    hk = P(h|vk) (``cd_gibbs``; Gaussian hidden units: E[h|v] in place of P(h=1|v) and
    h sampled as E[h|v] + N(0, I)); the negative log-likelihood gradient estimate

        dw = vk.T hk / m - v0.T h0 / n,   db = mean(hk) - mean(h0),   dc = mean(vk) - mean(v0)

    (m = n here) is written into the layer's ``grads`` and the run's optimizer steps, so
    momentum, Adam, schedules and ``lr_mult`` apply as for backprop; the engine's regularisers
    (``l2``, ``l1``, ``max_norm``, ``weight_noise``, ``clip_norm``, ``layer_*``) apply through
    ``engine.runtime.regularize`` (decay on w, never on the biases). Optional sparsity target
    (Hinton's Practical Guide, section 11): with ``sparsity_cost`` > 0, a running mean q of each
    hidden unit's activity (``sparsity_decay``) adds cost (q - ``sparsity_target``) to db and,
    times the mean visible activity, to dw. The epoch's ``loss`` is the squared error per
    element of each batch's first Gibbs reconstruction P(v|h0 sampled), before the step (free:
    the chain computes it; ``pcd``: the mean-field P(v|h0), one extra product). ``evaluate``
    reports (on the first 10000 rows for "train", the whole split otherwise, on the host in
    float64) ``recon_error``, ``free_energy`` (mean F(v)), on "val"/"test" the
    ``free_energy_gap`` (mean F on the split minus mean F on as many training rows: growing
    means overfitting), for binary visible units the ``pseudo_log_likelihood`` (Besag's,
    summed over every visible unit, mean over the split's first min(500, 2^23 / w.size) rows;
    deterministic, unlike scikit-learn's one random bit per row), and for at most 20 hidden
    units the exact ``log_likelihood`` per sample (log Z by enumerating the hidden states; with
    Gaussian hidden units log Z is a sum over the visible states instead, so it is reported for
    at most 20 visible units). The random numbers come from ``RNG_STATES`` xoroshiro128+
    generators seeded from the run's generator when the stage starts; they live on the run's
    device (a GPU draws its own, nothing is copied from the host per step) and are saved in
    checkpoints, so a resumed run draws what the uninterrupted one would. Spec keys: ``epochs``, ``batch_size``, ``shuffle``, ``k`` (Gibbs steps, 1),
    ``sparsity_target``, ``sparsity_cost``, ``sparsity_decay`` and the regulariser keys.
    """

    name = "cd"
    needs_loss = False
    kernels = KERNELS
    persistent = False

    def __init__(self, epochs: int = 10, batch_size: int | str = 32, shuffle: bool = True,
                 k: int = 1, sparsity_target: float = 0.1, sparsity_cost: float = 0.0,
                 sparsity_decay: float = 0.9, l2: float = 0.0, l1: float = 0.0,
                 max_norm: float = 0.0, weight_noise: float = 0.0, clip_norm: float = 0.0,
                 layer_l2: dict | None = None, layer_l1: dict | None = None,
                 layer_max_norm: dict | None = None):
        super().__init__(epochs=epochs, batch_size=batch_size, shuffle=shuffle)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k (Gibbs steps per update) must be an integer >= 1, got {k!r}")
        if not 0.0 < sparsity_target < 1.0:
            raise ValueError(f"sparsity_target must be a probability in (0, 1), "
                             f"got {sparsity_target!r}")
        if not sparsity_cost >= 0:
            raise ValueError(f"sparsity_cost must be >= 0 (0 turns sparsity off), "
                             f"got {sparsity_cost!r}")
        if not 0.0 <= sparsity_decay < 1.0:
            raise ValueError(f"sparsity_decay must be in [0, 1), got {sparsity_decay!r}")
        self.k_steps = k
        self.sparsity_target, self.sparsity_cost = float(sparsity_target), float(sparsity_cost)
        self.sparsity_decay = float(sparsity_decay)
        self.regularizer = Regularizer(l2=l2, l1=l1, max_norm=max_norm,
                                       weight_noise=weight_noise, clip_norm=clip_norm,
                                       layer_l2=layer_l2, layer_l1=layer_l1,
                                       layer_max_norm=layer_max_norm)
        self.q = None

    # -- setup -------------------------------------------------------------------------------
    def setup(self, run):
        self.rbm = rbm = self.the_one_layer(run, "rbm")
        if self.sparsity_cost > 0 and rbm.gaussian_hidden:
            raise SpecError(f"sparsity_cost applies to binary hidden units, but layer "
                            f"'{rbm.label}' has hidden = \"gaussian\" (linear units have no "
                            f"activity probability to hold at a target); leave sparsity_cost "
                            f"at 0.", source=run.spec.source, path=run.stage.section("trainer"))
        self.k = devices.kernels_for(self, run.dev)
        self.regularizer.setup(run, section=run.stage.section("trainer"))
        self.dtype = run.network.dtype
        self._buffers = {}
        self._sq = run.dev.zeros((1,), np.float64)
        self.q = None
        if self.sparsity_cost > 0:
            self.q = run.dev.to_device(np.full(rbm.units, self.sparsity_target, np.float64))
        self.rng_states = run.dev.empty((RNG_STATES, 2), np.uint64)
        self.k.rng_init(int(run.rng.integers(0, 2**63)), self.rng_states)

    def _buffer(self, run, key, shape):
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape:
            buf = self._buffers[key] = run.dev.empty(shape, self.dtype)
        return buf

    def noise(self, run, rows):
        """(u_h, u_v) for k Gibbs steps over ``rows`` chains, drawn on the run's device: uniforms
        (Gaussian hidden units: u_h standard normals; Gaussian visible units: u_v unused)."""
        rbm, k = self.rbm, self.k
        u_h = self._buffer(run, "u_h", (self.k_steps, rows, rbm.units))
        (k.normal_fill if rbm.gaussian_hidden else k.uniform_fill)(self.rng_states, u_h)
        if rbm.gaussian:  # mean-field visible reconstructions draw nothing
            u_v = self._buffer(run, "u_v", (self.k_steps, 1, 1))
        else:
            u_v = self._buffer(run, "u_v", (self.k_steps, rows, rbm.params["c"].shape[0]))
            k.uniform_fill(self.rng_states, u_v)
        return u_h, u_v

    # -- one step ----------------------------------------------------------------------------
    def negative_phase(self, run, v0, h0):
        """Run the chains; returns (vk, hk) and leaves h0 = P(h|v0) and the batch's summed
        squared reconstruction error in ``self._sq``. CD: chains start at the data, and the
        error is that of the first reconstruction P(v|h0 sampled), which cd_gibbs computes on
        the way."""
        n, n_vis = v0.shape
        vk = self._buffer(run, "vk", (n, n_vis))
        hk = self._buffer(run, "hk", h0.shape)
        u_h, u_v = self.noise(run, n)
        p, rbm = self.rbm.params, self.rbm
        self.k.cd_gibbs(v0, p["w"], p["b"], p["c"], self.k_steps, rbm.gaussian,
                        rbm.gaussian_hidden, u_h, u_v, h0, vk, hk, self._sq)
        return vk, hk

    def train_batch(self, run, x, t):
        rbm, reg, k = self.rbm, self.regularizer, self.k
        g = rbm.grads
        n, n_vis = x.shape
        if reg.active:
            reg.perturb(run)
        h0 = self._buffer(run, "h0", (n, rbm.units))
        vk, hk = self.negative_phase(run, x, h0)
        k.cd_gradient(x, h0, vk, hk, g["w"], g["b"], g["c"])
        if self.q is not None:
            k.sparsity_update(x, h0, self.sparsity_target, self.sparsity_cost,
                              self.sparsity_decay, self.q, g["w"], g["b"])
        if reg.active:
            reg.step(run)
        else:
            run.optimizer.step()
        return float(run.dev.to_host(self._sq)[0]) / n_vis

    # -- monitors ----------------------------------------------------------------------------
    def evaluate(self, run, split):
        if split not in run.data:
            return {}
        x = run.data[split][0]
        if split == "train":
            x = x[:TRAIN_ROWS]
        w, b, c = (np.asarray(run.dev.to_host(self.rbm.params[key]), np.float64)
                   for key in ("w", "b", "c"))
        gaussian, gh = self.rbm.gaussian, self.rbm.gaussian_hidden
        out = {"recon_error": recon_error(x, w, b, c, gaussian, gh),
               "free_energy": float(free_energy(x, w, b, c, gaussian, gh).mean())}
        if split != "train":
            ref = run.data["train"][0][: len(x)]
            out["free_energy_gap"] = out["free_energy"] - float(
                free_energy(ref, w, b, c, gaussian, gh).mean())
        if not gaussian:
            rows = max(1, min(PLL_ROWS, PLL_WORK // w.size))
            out["pseudo_log_likelihood"] = pseudo_log_likelihood(x[:rows], w, b, c, gh)
        if (w.shape[0] if gh else w.shape[1]) <= EXACT_MAX_UNITS:
            out["log_likelihood"] = log_likelihood(x, w, b, c, gaussian, gh)
        return out

    def state(self):
        out = {"rng_states": np.array(self.rbm.dev.to_host(self.rng_states))}
        if self.q is not None:
            out["sparsity_q"] = self.q_host()
        return out

    def q_host(self):
        return np.array(self.rbm.dev.to_host(self.q))

    def load_state(self, state):
        if self.q is not None and "sparsity_q" in state:
            self.rbm.dev.copy_(self.q, np.asarray(state["sparsity_q"], np.float64))
        if "rng_states" in state:  # checkpoints from before device generators have none
            states = np.asarray(state["rng_states"], np.uint64)
            if states.shape != tuple(self.rng_states.shape):
                raise ValueError(f"the checkpoint's generator states have shape {states.shape}, "
                                 f"this run's {tuple(self.rng_states.shape)}")
            self.rbm.dev.copy_(self.rng_states, states)


class PersistentCD(ContrastiveDivergence):
    """Persistent contrastive divergence (Tieleman 2008): the negative phase continues
    ``chains`` fantasy particles from batch to batch instead of restarting at the data.

    The positive phase is h0 = P(h|v0) on the batch; the chains advance k Gibbs steps and give
    vk, hk for the negative statistics (averaged over the m chains). The chains start at m
    training rows drawn at random when the stage begins, live on the trainer, and are saved in
    checkpoints (``state``), so a resumed run continues them bit for bit. Spec keys: those of
    ``cd``, plus ``chains`` (number of fantasy particles; 0 = the batch size).
    """

    name = "pcd"
    persistent = True

    def __init__(self, epochs: int = 10, batch_size: int | str = 32, shuffle: bool = True,
                 k: int = 1, chains: int = 0, sparsity_target: float = 0.1,
                 sparsity_cost: float = 0.0, sparsity_decay: float = 0.9, l2: float = 0.0,
                 l1: float = 0.0, max_norm: float = 0.0, weight_noise: float = 0.0,
                 clip_norm: float = 0.0, layer_l2: dict | None = None,
                 layer_l1: dict | None = None, layer_max_norm: dict | None = None):
        super().__init__(epochs=epochs, batch_size=batch_size, shuffle=shuffle, k=k,
                         sparsity_target=sparsity_target, sparsity_cost=sparsity_cost,
                         sparsity_decay=sparsity_decay, l2=l2, l1=l1, max_norm=max_norm,
                         weight_noise=weight_noise, clip_norm=clip_norm, layer_l2=layer_l2,
                         layer_l1=layer_l1, layer_max_norm=layer_max_norm)
        if isinstance(chains, bool) or not isinstance(chains, int) or chains < 0:
            raise ValueError(f"chains must be a non-negative integer (0 = the batch size), "
                             f"got {chains!r}")
        self.chains = chains

    def setup(self, run):
        super().setup(run)
        n = run.x_train.shape[0]
        m = self.chains or (n if self.batch_size == "full" else min(self.batch_size, n))
        rows = run.rng.integers(0, n, m)
        self.v_chain = run.dev.take(run.x_train, rows)

    def negative_phase(self, run, v0, h0):
        p, rbm = self.rbm.params, self.rbm
        (self.k.rbm_hidden_mean if rbm.gaussian_hidden else self.k.rbm_hidden)(
            v0, p["w"], p["b"], h0)
        m = self.v_chain.shape[0]
        h_start = self._buffer(run, "h_chain0", (m, self.rbm.units))
        hk = self._buffer(run, "hk", (m, self.rbm.units))
        u_h, u_v = self.noise(run, m)
        self.k.cd_gibbs(self.v_chain, p["w"], p["b"], p["c"], self.k_steps, rbm.gaussian,
                        rbm.gaussian_hidden, u_h, u_v, h_start, self.v_chain, hk, self._sq)
        # the chains are not the data: the reported error is the batch's mean-field one
        recon = self._buffer(run, "recon", v0.shape)
        visible = self.k.rbm_visible_mean if self.rbm.gaussian else self.k.rbm_visible
        visible(h0, p["w"], p["c"], recon)
        self.k.squared_error(v0, recon, self._sq)
        return self.v_chain, hk

    def state(self):
        return {**super().state(), "chains": np.array(self.rbm.dev.to_host(self.v_chain))}

    def load_state(self, state):
        super().load_state(state)
        chains = np.asarray(state["chains"], self.dtype)
        if chains.shape != tuple(self.v_chain.shape):
            raise ValueError(f"the checkpoint's persistent chains have shape {chains.shape}, "
                             f"this run's {tuple(self.v_chain.shape)}")
        self.rbm.dev.copy_(self.v_chain, chains)


# -- exact monitors on the host (float64) -----------------------------------------------------
def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _hidden_term(z, b, gaussian_h):
    """-(the hidden part of F) per row for pre-activations z = v w + b: sum softplus(z) for
    binary hidden units, (|z|^2 - |b|^2) / 2 for Gaussian ones."""
    if gaussian_h:
        return 0.5 * (np.square(z).sum(1) - b @ b)
    return _softplus(z).sum(1)


def free_energy(x, w, b, c, gaussian, gaussian_h=False):
    """F(v) per row: -v.c - sum softplus(v w + b) (Gaussian visible: |v - c|^2 / 2 - ...;
    Gaussian hidden: ... - (|v w + b|^2 - |b|^2) / 2)."""
    out = np.empty(len(x))
    for s in range(0, len(x), EVAL_ROWS):
        v = np.asarray(x[s : s + EVAL_ROWS], np.float64)
        vis = 0.5 * np.square(v - c).sum(1) if gaussian else -(v @ c)
        out[s : s + EVAL_ROWS] = vis - _hidden_term(v @ w + b, b, gaussian_h)
    return out


def recon_error(x, w, b, c, gaussian, gaussian_h=False):
    """Mean squared error per element of the mean-field one-step reconstruction
    P(v|h = P(h|v)) (Gaussian visible: E[v|h]; Gaussian hidden: h = E[h|v] = v w + b)."""
    total = 0.0
    for s in range(0, len(x), EVAL_ROWS):
        v = np.asarray(x[s : s + EVAL_ROWS], np.float64)
        h = v @ w + b
        z = (h if gaussian_h else _sigmoid(h)) @ w.T + c
        total += np.square(v - (z if gaussian else _sigmoid(z))).sum()
    return float(total / max(1, np.size(x)))


def log_partition(w, b, c, gaussian, gaussian_h=False, chunk=4096):
    """log Z, exactly, by enumerating the 2^units hidden configurations: Z = sum_h e^{h.b}
    prod_i (1 + e^{c_i + (w h)_i}) (Gaussian visible: (2 pi)^{n/2} e^{h.b + |c + w h|^2/2 -
    |c|^2/2}). Gaussian hidden units: Z = sum_v e^{-F(v)} over the 2^n_visible binary visible
    states (F without the (2 pi)^{units/2} it leaves out)."""
    if gaussian_h:
        n_vis = w.shape[0]
        if n_vis > EXACT_MAX_UNITS:
            raise ValueError(f"exact log Z of a Gaussian-hidden RBM enumerates 2^n_visible "
                             f"states; n_visible = {n_vis} > {EXACT_MAX_UNITS}")
        bits = 1 << np.arange(n_vis)
        parts = [-free_energy(((np.arange(s, min(1 << n_vis, s + chunk))[:, None] & bits) != 0)
                              .astype(np.float64), w, b, c, False, True)
                 for s in range(0, 1 << n_vis, chunk)]
        return float(np.logaddexp.reduce(np.concatenate(parts)))
    units = w.shape[1]
    if units > EXACT_MAX_UNITS:
        raise ValueError(f"exact log Z enumerates 2^units states; units = {units} > "
                         f"{EXACT_MAX_UNITS}")
    bits = 1 << np.arange(units)
    parts = []
    for start in range(0, 1 << units, chunk):
        codes = np.arange(start, min(1 << units, start + chunk))
        h = ((codes[:, None] & bits) != 0).astype(np.float64)
        a = h @ w.T + c
        if gaussian:
            parts.append(h @ b + 0.5 * np.square(a).sum(1) - 0.5 * c @ c
                         + 0.5 * len(c) * np.log(2 * np.pi))
        else:
            parts.append(h @ b + _softplus(a).sum(1))
    return float(np.logaddexp.reduce(np.concatenate(parts)))


def log_likelihood(x, w, b, c, gaussian, gaussian_h=False):
    """Mean log p(v) = -F(v) - log Z over the rows of x (a log density for Gaussian v)."""
    return float(-free_energy(x, w, b, c, gaussian, gaussian_h).mean()
                 - log_partition(w, b, c, gaussian, gaussian_h))


def pseudo_log_likelihood(x, w, b, c, gaussian_h=False):
    """Mean over the rows of x of sum_i log P(v_i | v_-i) = sum_i log sigmoid(F(v~i) - F(v)),
    v~i being v with bit i flipped (binary visible units). Flipping bit i moves the hidden
    pre-activations by s_i w_i with s_i = 1 - 2 v_i, so no extra matrix product is needed:
    F(v~i) - F(v) = -s_i c_i - sum_j [softplus(z_j + s_i w_ij) - softplus(z_j)] (Gaussian
    hidden units: (z_j + s_i w_ij)^2 / 2 - z_j^2 / 2 in place of the softplus difference)."""
    total = 0.0
    rows = max(1, (1 << 22) // w.size)  # (rows, n_visible, units) float64 blocks of <= 32 MiB
    for start in range(0, len(x), rows):
        v = np.asarray(x[start : start + rows], np.float64)
        z = v @ w + b
        s = 1.0 - 2.0 * v
        moved = z[:, None, :] + s[:, :, None] * w[None, :, :]
        if gaussian_h:
            flipped, base = 0.5 * np.square(moved).sum(2), 0.5 * np.square(z).sum(1)
        else:
            flipped, base = _softplus(moved).sum(2), _softplus(z).sum(1)
        gap = -s * c - (flipped - base[:, None])
        total += float(-np.logaddexp(0.0, -gap).sum())  # log sigmoid(gap), stably
    return total / max(1, len(x))
