"""Independent NumPy references for the tests: activations from their math definitions and the
GRU recurrence written from the equations (names as in the ONNX operator doc: X, W, R, H).

Nothing here imports gru_onnx: it is what the package is checked against.
"""

from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _hard_sigmoid(x, alpha=1.0 / 6.0, beta=0.5):
    return np.clip(alpha * x + beta, 0.0, 1.0)


# name -> (function of (x, **params), default params)
ACTIVATIONS = {
    "tanh": (lambda x: np.tanh(x), {}),
    "sigmoid": (_sigmoid, {}),
    "relu": (lambda x: np.maximum(x, 0.0), {}),
    "relu6": (lambda x: np.clip(x, 0.0, 6.0), {}),
    "leaky_relu": (lambda x, alpha: np.where(x >= 0, x, alpha * x), {"alpha": 0.01}),
    "elu": (lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(x)), {"alpha": 1.0}),
    "selu": (lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), {}),
    "celu": (lambda x, alpha: np.maximum(0.0, x) + np.minimum(0.0, alpha * np.expm1(x / alpha)), {"alpha": 1.0}),
    "gelu": (lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))), {}),
    "gelu_tanh": (
        lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
        {},
    ),
    "silu": (lambda x: x * _sigmoid(x), {}),
    "mish": (lambda x: x * np.tanh(np.logaddexp(0.0, x)), {}),
    "softplus": (
        lambda x, beta, threshold: np.where(beta * x > threshold, x, np.logaddexp(0.0, beta * x) / beta),
        {"beta": 1.0, "threshold": 20.0},
    ),
    "softsign": (lambda x: x / (1.0 + np.abs(x)), {}),
    "hardtanh": (lambda x, min_val, max_val: np.clip(x, min_val, max_val), {"min_val": -1.0, "max_val": 1.0}),
    "hard_sigmoid": (_hard_sigmoid, {"alpha": 1.0 / 6.0, "beta": 0.5}),
    "hard_swish": (lambda x: x * _hard_sigmoid(x), {}),
    "linear": (lambda x: x, {}),
}


def activation(name: str, **params):
    fn, defaults = ACTIVATIONS[name]
    merged = {**defaults, **params}
    return lambda x: fn(x, **merged)


def gru_direction(X, W, R, Wb, Rb, H_0, f, g, reset_after, lengths=None, reverse=False):
    """One direction. X [T, B, I]; W [3H, I], R [3H, H] in PyTorch gate order r, z, n."""
    T = X.shape[0]
    hidden = R.shape[1]
    H = H_0.copy()
    Y = np.zeros((T, X.shape[1], hidden))
    order = range(T - 1, -1, -1) if reverse else range(T)
    W_r, W_z, W_n = np.split(W, 3)
    R_r, R_z, R_n = np.split(R, 3)
    Wb_r, Wb_z, Wb_n = np.split(Wb, 3)
    Rb_r, Rb_z, Rb_n = np.split(Rb, 3)
    for t in order:
        x = X[t]
        r = f(x @ W_r.T + Wb_r + H @ R_r.T + Rb_r)
        z = f(x @ W_z.T + Wb_z + H @ R_z.T + Rb_z)
        if reset_after:
            n = g(x @ W_n.T + Wb_n + r * (H @ R_n.T + Rb_n))
        else:
            n = g(x @ W_n.T + Wb_n + (r * H) @ R_n.T + Rb_n)
        H_new = (1.0 - z) * n + z * H
        if lengths is None:
            H = H_new
            Y[t] = H
        else:
            valid = (t < np.asarray(lengths))[:, None]
            Y[t] = np.where(valid, H_new, 0.0)
            H = np.where(valid, H_new, H)
    return Y, H


def gru_stack(
    x,
    params,
    *,
    num_layers=1,
    bidirectional=False,
    activation_fn=np.tanh,
    recurrent_fn=_sigmoid,
    reset_after=True,
    batch_first=False,
    h0=None,
    lengths=None,
):
    """nn.GRU-shaped reference: params by nn.GRU names (numpy arrays), returns (output, h_n)."""
    x = np.asarray(x, dtype=np.float64)
    if batch_first:
        x = x.transpose(1, 0, 2)
    dirs = 2 if bidirectional else 1
    hidden = params["weight_hh_l0"].shape[1]
    batch = x.shape[1]
    if h0 is None:
        h0 = np.zeros((num_layers * dirs, batch, hidden))
    finals = []
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            W = params[f"weight_ih{sfx}"].astype(np.float64)
            R = params[f"weight_hh{sfx}"].astype(np.float64)
            zeros = np.zeros(R.shape[0])
            Wb = params.get(f"bias_ih{sfx}", zeros).astype(np.float64)
            Rb = params.get(f"bias_hh{sfx}", zeros).astype(np.float64)
            y, h = gru_direction(
                x,
                W,
                R,
                Wb,
                Rb,
                np.asarray(h0[layer * dirs + d], np.float64),
                recurrent_fn,
                activation_fn,
                reset_after,
                lengths,
                reverse=d == 1,
            )
            outs.append(y)
            finals.append(h)
        x = np.concatenate(outs, axis=-1)
    y = x.transpose(1, 0, 2) if batch_first else x
    return y, np.stack(finals)
