"""The parameter row of a Gating-ML 2.0 scale transform, computed once per transform for the engine's kernels.

Plain Python, moved out of ``_kernels.py`` (which holds what Numba compiles): the row's
layout, its slots ``_P_*`` and length ``XF_PARAMS``, stays defined there, beside the
kernels that read it, because Numba's cache would keep the old values of constants
read from another file. ``_static_cache.py`` hashes this file with ``_kernels.py``.
"""

from __future__ import annotations

import math

import numpy as np

from ._kernels import (
    _DBL_EPS,
    _N_TAYLOR,
    _P_A,
    _P_AA,
    _P_B,
    _P_C,
    _P_D,
    _P_F,
    _P_INV,
    _P_M,
    _P_T,
    _P_TAYLOR,
    _P_W,
    _P_X1,
    _P_XT,
    XF_ASINH,
    XF_HYPERLOG,
    XF_LOGICLE,
    XF_PARAMS,
)

__all__ = ["transform_params"]


def _logicle_solve_d(b: float, w: float) -> float:
    """Root d of ``2 (ln d - ln b) + w (b + d) = 0`` (Moore & Parks 2012, RTSAFE)."""
    if w == 0.0:
        return b
    tolerance = 2.0 * b * _DBL_EPS
    d_lo, d_hi = 0.0, b
    d = (d_lo + d_hi) / 2.0
    last_delta = d_hi - d_lo
    f_b = -2.0 * math.log(b) + w * b
    f = 2.0 * math.log(d) + w * d + f_b
    last_f = math.nan
    for _ in range(1, 40):
        df = 2.0 / d + w
        if ((d - d_hi) * df - f) * ((d - d_lo) * df - f) >= 0 or abs(1.9 * f) > abs(last_delta * df):
            delta = (d_hi - d_lo) / 2.0
            d = d_lo + delta
            if d == d_lo:
                return d
        else:
            delta = f / df
            t = d
            d -= delta
            if d == t:
                return d
        if abs(delta) < tolerance:
            return d
        last_delta = delta
        f = 2.0 * math.log(d) + w * d + f_b
        if f == 0 or f == last_f:
            return d
        last_f = f
        if f < 0:
            d_lo = d
        else:
            d_hi = d
    return -1.0


def transform_params(kind: int, t: float, w: float = 0.0, m: float = 0.0, a: float = 0.0) -> np.ndarray:
    """Parameter row (length ``XF_PARAMS``) of a Gating-ML scale transform.

    Plain Python, run once per transform. The logicle and hyperlog constants
    follow Moore & Parks (2012) operation by operation, as in the reference C
    code that FlowKit (flowutils) uses, so the kernels agree with it to the last bit.
    """
    p = np.zeros(XF_PARAMS, dtype=np.float64)
    p[_P_T], p[_P_W], p[_P_M], p[_P_AA] = t, w, m, a
    if kind == XF_ASINH:
        ln10 = np.log(10.0)
        p[0] = np.sinh(m * ln10) / t
        p[1] = a * ln10
        p[2] = (m + a) * ln10
    elif kind in (XF_LOGICLE, XF_HYPERLOG):
        ww = w / (m + a)
        x2 = a / (m + a)
        x1 = x2 + ww
        x0 = x2 + 2.0 * ww
        b = (m + a) * math.log(10.0)
        taylor = np.zeros(_N_TAYLOR)
        if kind == XF_LOGICLE:
            d = _logicle_solve_d(b, ww)
            c_a = math.exp(x0 * (b + d))
            mf_a = math.exp(b * x1) - c_a / math.exp(d * x1)
            aa = t / ((math.exp(b) - mf_a) - c_a / math.exp(d))
            c = c_a * aa
            f = -mf_a * aa
            pos = aa * math.exp(b * x1)
            neg = -c / math.exp(d * x1)
            for i in range(_N_TAYLOR):
                pos *= b / (i + 1)
                neg *= -d / (i + 1)
                taylor[i] = pos + neg
            taylor[1] = 0.0  # exact by the logicle condition
            inverse = 0.0
        else:
            d = 0.0
            e0 = math.exp(b * x0)
            c_a = e0 / ww
            f_a = math.exp(b * x1) + c_a * x1
            aa = t / (math.exp(b) + c_a - f_a)
            c = c_a * aa
            f = f_a * aa
            coef = aa * math.exp(b * x1)
            for i in range(_N_TAYLOR):
                coef *= b / (i + 1)
                taylor[i] = coef
            taylor[0] += c
            # start value of the root search (the reference code evaluates it with
            # the logicle series, which skips the linear term)
            x_tay = x1 + ww / 4.0
            tmp_x0 = 2.0 * x1 - x0 if x0 < x1 else x0
            if tmp_x0 < x_tay:
                xx = tmp_x0 - x1
                s = taylor[_N_TAYLOR - 1] * xx
                for i in range(_N_TAYLOR - 2, 1, -1):
                    s = (s + taylor[i]) * xx
                inverse = (s * xx + taylor[0]) * xx
            else:
                inverse = aa * math.exp(b * tmp_x0) + c * tmp_x0
            if x0 < x1:
                inverse = -inverse
        p[_P_A], p[_P_B], p[_P_C], p[_P_D], p[_P_F] = aa, b, c, d, f
        p[_P_W], p[_P_X1], p[_P_XT], p[_P_INV] = ww, x1, x1 + ww / 4.0, inverse
        p[_P_TAYLOR:_P_TAYLOR + _N_TAYLOR] = taylor
    return p
