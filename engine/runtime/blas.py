"""Matrix products for ``@njit`` kernels, through the OpenBLAS that NumPy's wheels bundle.

A kernel that walks a recurrence calls GEMM many times a batch on small blocks, from inside its
own loops, so it cannot hand the products to NumPy in Python. Numba's own ``np.dot`` calls
SciPy's BLAS (``numba_xxgemm``); NumPy's wheels bundle a newer OpenBLAS (0.3.31 against
SciPy's 0.3.30 here) whose small-matrix kernels are faster at a recurrent step's shapes (2 cores,
AMD EPYC, AVX-512, 2026-11-30: 32 x 128 by 128 x 512 in 0.73 against 0.85 ms for 28 products,
the backward 32 x 512 by 512 x 128 in 0.70 against 0.93 ms). Not at every shape: LeNet-5's
im2col products ran slower through it (``redes bench lenet5`` 1.60-1.62x PyTorch against
1.67-1.76x), so the conv family keeps ``np.dot``; measure before switching a family.
``gemm`` calls NumPy's OpenBLAS when it exports the ILP64 Fortran ``sgemm``/``dgemm``
(``scipy_sgemm_64_``, as NumPy's PyPI wheels do) and SciPy's otherwise (conda, Accelerate,
distribution builds).

The choice is made at import, not in the compiled code: the kernels call the fixed external
symbols ``redes_sgemm64``/``redes_dgemm64`` and read ``redes_blas_ilp64`` (1: call them, 0: call
SciPy's), all registered here with llvmlite before any kernel is loaded, so kernels stay
cacheable and a cached kernel follows whatever this process found. ``threadpoolctl`` limits
every BLAS it finds, this one included, and ``engine.runtime.fpu`` flushes denormals on every
OpenBLAS's threads.
"""

import ctypes

import threadpoolctl
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, errors
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas

ensure_blas()  # SciPy's BLAS behind numba_xxgemm: the fallback, and the default of np.dot

ILP64_SYMBOLS = ("scipy_sgemm_64_", "scipy_dgemm_64_")  # NumPy's bundled scipy-openblas64
_use_ilp64 = ctypes.c_int32(0)  # read by the compiled kernels through redes_blas_ilp64


def _ilp64_gemm():
    """(sgemm, dgemm) addresses of a loaded OpenBLAS with the ILP64 Fortran symbols, or None."""
    for lib in threadpoolctl.threadpool_info():
        if lib.get("internal_api") != "openblas":
            continue
        try:
            handle = ctypes.CDLL(lib["filepath"])
            return tuple(ctypes.cast(getattr(handle, name), ctypes.c_void_p).value
                         for name in ILP64_SYMBOLS)
        except (OSError, AttributeError):
            continue
    return None


def _register():
    found = _ilp64_gemm()
    _use_ilp64.value = int(found is not None)
    if found is None:  # never called while the flag is 0, but the symbols must resolve
        from numba import _helperlib

        found = (_helperlib.c_helpers["xxgemm"],) * 2
    llvm.add_symbol("redes_sgemm64", found[0])
    llvm.add_symbol("redes_dgemm64", found[1])
    llvm.add_symbol("redes_blas_ilp64", ctypes.addressof(_use_ilp64))


def library():
    """Which BLAS ``gemm`` calls in this process: ``"numpy-openblas-ilp64"`` or
    ``"scipy"``."""
    return "numpy-openblas-ilp64" if _use_ilp64.value else "scipy"


_register()


@intrinsic
def _xgemm(typingctx, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """Column-major (Fortran) gemm on the data of array views a, b, c: c = op(a) op(b) +
    beta c, alpha 1; ``ta``/``tb`` booleans (True: transposed). One branch per call on the
    flag chosen at import; no ctypes object is embedded, so callers stay cacheable."""
    floats = (types.float32, types.float64)
    if not all(isinstance(x, types.Array) for x in (a, b, c)):
        raise errors.TypingError("gemm: a, b and c must be arrays")
    if a.dtype not in floats or not a.dtype == b.dtype == c.dtype:
        raise errors.TypingError(f"gemm reads raw memory and needs one float dtype for a, b and "
                                 f"c (float32 or float64), got {a.dtype}, {b.dtype}, {c.dtype}")
    sig = types.int32(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        void_p = i8.as_pointer()
        intp_t = context.get_value_type(types.intp)
        tys = signature.args
        dtype = tys[5].dtype
        single = dtype == types.float32
        vta, vtb, vm, vn, vk, va, vlda, vb, vldb, vbeta, vc, vldc = args

        def data(ty, val):
            return builder.bitcast(context.make_array(ty)(context, builder, val).data, void_p)

        def char(ty, val):  # bool -> 't' / 'n'
            flag = context.cast(builder, val, ty, types.boolean)
            return builder.select(flag, ir.Constant(i8, ord("t")), ir.Constant(i8, ord("n")))

        def size(ty, val):
            return context.cast(builder, val, ty, types.intp)

        alpha = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
        beta = cgutils.alloca_once_value(builder, context.cast(builder, vbeta, tys[9], dtype))
        sizes = [size(tys[i], v) for i, v in ((2, vm), (3, vn), (4, vk), (6, vlda), (8, vldb),
                                               (11, vldc))]
        chars = [char(tys[0], vta), char(tys[1], vtb)]
        pa, pb, pc = data(tys[5], va), data(tys[7], vb), data(tys[10], vc)
        module = builder.module
        use = module.globals.get("redes_blas_ilp64")
        if use is None:
            use = cgutils.add_global_variable(module, i32, "redes_blas_ilp64")
        status = cgutils.alloca_once_value(builder, ir.Constant(i32, 0))
        on = builder.icmp_signed("!=", builder.load(use), ir.Constant(i32, 0))
        with builder.if_else(on) as (ilp64, scipy):
            with ilp64:  # Fortran ILP64: every argument by reference, 64-bit integers
                fnty = ir.FunctionType(ir.VoidType(), [void_p] * 13)
                fn = cgutils.get_or_insert_function(
                    module, fnty, "redes_sgemm64" if single else "redes_dgemm64")
                ref = [builder.bitcast(cgutils.alloca_once_value(builder, v), void_p)
                       for v in chars]
                ints = [builder.bitcast(cgutils.alloca_once_value(
                    builder, builder.sext(v, i64) if v.type.width < 64 else v), void_p)
                    for v in sizes]
                m_, n_, k_, lda_, ldb_, ldc_ = ints
                builder.call(fn, [ref[0], ref[1], m_, n_, k_, builder.bitcast(alpha, void_p), pa,
                                  lda_, pb, ldb_, builder.bitcast(beta, void_p), pc, ldc_])
            with scipy:  # Numba's helper: SciPy's LP64 gemm, sizes by value
                fnty = ir.FunctionType(i32, [i8, i8, i8, intp_t, intp_t, intp_t, void_p, void_p,
                                             intp_t, void_p, intp_t, void_p, void_p, intp_t])
                fn = cgutils.get_or_insert_function(module, fnty, "numba_xxgemm")
                kind = ir.Constant(i8, ord("s") if single else ord("d"))
                m_, n_, k_, lda_, ldb_, ldc_ = sizes
                builder.store(builder.call(fn, [kind, chars[0], chars[1], m_, n_, k_,
                                                builder.bitcast(alpha, void_p), pa, lda_, pb,
                                                ldb_, builder.bitcast(beta, void_p), pc, ldc_]),
                              status)
        return builder.load(status)

    return sig, codegen


@njit(cache=True, error_model="numpy")
def gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """Row-major ``c (m, n) = op(a) @ op(b) + beta * c``: ``a``, ``b``, ``c`` are array views
    whose first element starts each matrix, ``lda``, ``ldb``, ``ldc`` their row strides in
    elements, ``ta``/``tb`` True for a transposed operand. One dtype (float32 or float64) for
    all three, checked when the caller compiles (the product reads raw memory). Call it with BLAS
    held to one thread per caller (threadpoolctl) when several Numba threads call it."""
    _xgemm(tb, ta, n, m, k, b, ldb, a, lda, beta, c, ldc)
