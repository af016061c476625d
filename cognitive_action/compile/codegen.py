"""Generated C for compiled systems, built with the system's C compiler and cached on disk.

:func:`generate_source` writes CasADi functions (and the Jacobians integrators need) as
one C file; :func:`build_library` compiles it into a shared library in a cache keyed by
a hash of the source, the compiler and its flags; :func:`codegen_system` returns a copy
of a :class:`~cognitive_action.compile.system.CompiledSystem` whose functions are loaded
back from that library through ``casadi.external``.

The cache lives in the platform's user cache directory (``$XDG_CACHE_HOME`` or
``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows),
under ``cognitive_action/c``; ``COGNITIVE_ACTION_CACHE`` or the ``cache_dir`` argument
overrides it. Entries are written atomically (compile to a temporary file in the cache
directory, then rename), each with a SHA-256 digest of the library beside it: a
truncated or altered library fails the digest check and is rebuilt. Two processes that
build the same entry at once both succeed (the renames are atomic; the last one wins
with identical content).

Design notes: scalar SX graphs give C that grows with the number of weights; the
network route's MX matrix operations give C whose code grows with the number of
templates (the arc index arrays are data: 180 kB of C at 50 neurons, 3 MB at 200; build
times in docs/performance.md).

BLAS: the network route's dense products (``J_x J_xᵀ`` of eq. 10) are emitted as calls
to the Fortran ``dgemm_`` when the system was compiled with ``blas=True``; the library is
then linked against the OpenBLAS that CasADi's wheel ships
(:func:`blas_link_arguments`). Without it CasADi's reference loops run instead, 1.6×
(50 neurons) to 2.4× (200 neurons) slower per right-hand side (measured in
``benchmarks/bench_compile.py``'s system).

Examples
--------
>>> import casadi as ca, tempfile
>>> x = ca.SX.sym("x")
>>> f = ca.Function("square", [x], [x * x])
>>> lib = build_library(generate_source([f]), cache_dir=tempfile.mkdtemp())
>>> float(ca.external("square", str(lib.path))(3.0))
9.0
>>> lib.cached
False
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import casadi as ca

from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.errors import CompileError

__all__ = ["Library", "cache_directory", "generate_source", "build_library", "codegen_system",
           "blas_link_arguments", "DEFAULT_FLAGS"]

#: Compiler flags used unless told otherwise.
DEFAULT_FLAGS = ("-O2", "-fPIC", "-shared")
_CODEGEN_SOLVERS = ("qr", "ldl")  # linear solvers whose C CasADi generates self-contained


@dataclass(frozen=True)
class Library:
    """A built shared library.

    Attributes
    ----------
    path
        The library in the cache.
    key
        The cache key (SHA-256 of source, compiler, flags and CasADi version).
    cached
        Whether it was found in the cache (no compilation this time).
    source_bytes
        Size of the generated C.
    compile_time
        Seconds spent in the compiler (0 when cached).
    """

    path: Path
    key: str
    cached: bool
    source_bytes: int
    compile_time: float = 0.0


def cache_directory(cache_dir: str | os.PathLike | None = None) -> Path:
    """The directory of compiled libraries (created if needed).

    ``cache_dir`` wins, then the environment variable ``COGNITIVE_ACTION_CACHE``, then
    the platform's user cache directory.
    """
    if cache_dir is None:
        cache_dir = os.environ.get("COGNITIVE_ACTION_CACHE")
    if cache_dir is None:
        if sys.platform == "win32":
            root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        elif sys.platform == "darwin":
            root = Path.home() / "Library" / "Caches"
        else:
            root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        path = root / "cognitive_action" / "c"
    else:
        path = Path(cache_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def generate_source(functions: Sequence[ca.Function], *, jacobians: Sequence[str] = ()
                    ) -> str:
    """C source of CasADi functions, with ``jac_<name>`` for the names in ``jacobians``
    (what ``casadi.external`` looks for when an integrator needs a Jacobian)."""
    cg = ca.CodeGenerator("cognitive_action_generated.c", {"with_header": False})
    for fn in functions:
        try:
            cg.add(fn)
            if fn.name() in jacobians:
                cg.add(fn.jacobian())
        except RuntimeError as exc:
            raise CompileError(f"CasADi cannot generate C for {fn.name()!r}: "
                               f"{str(exc).strip().splitlines()[-1]}",
                               fix="use the linear solver 'qr' or 'ldl', whose C is "
                               "self-contained") from None
    return cg.dump()


def blas_link_arguments() -> tuple[str, ...] | None:
    """Linker arguments for a BLAS with the Fortran ``dgemm_`` (the OpenBLAS shipped in
    CasADi's wheel), or ``None`` when there is none to link against.

    The library is passed by its path with a run-time search path beside it, so the
    generated library loads without ``LD_LIBRARY_PATH``.
    """
    import ctypes

    folder = Path(ca.__file__).resolve().parent
    names = {"linux": "libcasadi-tp-openblas.so", "darwin": "libcasadi-tp-openblas.dylib"}
    name = names.get("darwin" if sys.platform == "darwin" else
                     "linux" if sys.platform.startswith("linux") else "")
    if name is None or not (folder / name).is_file():
        return None
    try:
        if not hasattr(ctypes.CDLL(str(folder / name)), "dgemm_"):
            return None
    except OSError:
        return None
    return (str(folder / name), f"-Wl,-rpath,{folder}")


def _compiler(compiler: str | None) -> str:
    cc = compiler or os.environ.get("CC") or "cc"
    path = shutil.which(cc)
    if path is None:
        raise CompileError(f"no C compiler {cc!r} on this system",
                           fix="install gcc or clang, or pass compiler='/path/to/cc'")
    return path


def _compiler_id(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0] if out.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return cc


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _valid(lib: Path, digest_file: Path) -> bool:
    try:
        return lib.is_file() and digest_file.read_text().strip() == _digest(lib)
    except OSError:
        return False


def build_library(source: str, *, cache_dir: str | os.PathLike | None = None,
                  compiler: str | None = None, flags: Sequence[str] = DEFAULT_FLAGS,
                  link: Sequence[str] = ()) -> Library:
    """Compile C source into a shared library in the cache (or reuse a valid entry).

    ``link`` are linker arguments placed after the source (libraries, e.g.
    :func:`blas_link_arguments`); they are part of the cache key like ``flags``.

    Raises
    ------
    CompileError
        No compiler, or the compiler failed (its last lines of output quoted).
    """
    cc = _compiler(compiler)
    flags, link = tuple(flags), tuple(link)
    ext = ".dll" if sys.platform == "win32" else (".dylib" if sys.platform == "darwin" else ".so")
    key = hashlib.sha256("\0".join(
        [source, _compiler_id(cc), " ".join(flags), " ".join(link), ca.__version__,
         sys.platform]
    ).encode()).hexdigest()[:32]
    root = cache_directory(cache_dir)
    lib = root / f"ca_{key}{ext}"
    digest_file = root / f"ca_{key}.sha256"
    if _valid(lib, digest_file):
        return Library(path=lib, key=key, cached=True, source_bytes=len(source))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=root, prefix=".build-") as tmp:
        c_file = Path(tmp) / f"ca_{key}.c"
        c_file.write_text(source)
        out_file = Path(tmp) / f"ca_{key}{ext}"
        cmd = [cc, *flags, str(c_file), "-o", str(out_file), *link, "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out_file.is_file():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise CompileError(f"the C compiler failed ({' '.join(cmd[:2])} ...): {tail}",
                               fix="check the compiler and flags; generated code needs only "
                               "libm")
        data = out_file.read_bytes()
    _atomic_write(lib, data)
    _atomic_write(digest_file, hashlib.sha256(data).hexdigest().encode())
    return Library(path=lib, key=key, cached=False, source_bytes=len(source),
                   compile_time=time.perf_counter() - t0)


#: Most bytes of C that :func:`codegen_system` may generate, judged before generating.
MAX_SOURCE_BYTES = 50_000_000
#: Bytes of C per state that exact Jacobians add at least: measured 17-22 kB on layered
#: nets of 38-460 states (0.66-10 MB of C) and 132 kB at 6,640 states ([20, 40, 40, 20]:
#: 876 MB), so this lower bound never overestimates.
EXACT_BYTES_PER_STATE = 17_000


def codegen_system(system: CompiledSystem, *, cache_dir: str | os.PathLike | None = None,
                   compiler: str | None = None, flags: Sequence[str] = DEFAULT_FLAGS,
                   derivatives: str = "fd", blas: bool | None = None,
                   max_source_bytes: int = MAX_SOURCE_BYTES) -> CompiledSystem:
    """A copy of ``system`` whose functions run from generated, compiled C.

    ``rhs``, ``unknowns``, ``constraints`` and the DAE function are generated into one
    library; the projection and the stability check stay in the CasADi VM.

    Parameters
    ----------
    derivatives
        How integrators that need Jacobians (cvodes, idas) get them: ``"fd"`` (finite
        differences of the compiled functions; small C, fast to compile) or ``"exact"``
        (the Jacobians of ``rhs`` and of the DAE generated too: about 8 times more C).
    blas
        Network route: keep the dense products as ``dgemm_`` calls and link the BLAS of
        :func:`blas_link_arguments` (``None``: when there is one; ``False``: CasADi's
        self-contained reference loops, recompiling the system without BLAS). A system
        that solves eq. (10) with ``lapacklu`` (the default from 100 neurons, whose C is
        not self-contained) is recompiled with ``ldl``.
    max_source_bytes
        The size budget of the generated C. With ``derivatives="exact"`` the size is
        estimated from the number of states before anything is generated
        (:data:`EXACT_BYTES_PER_STATE`, a measured lower bound): a ``[20, 40, 40, 20]``
        net would generate 876 MB of C.

    Raises
    ------
    CompileError
        A linear solver whose C is not self-contained (use ``qr`` or ``ldl``), a
        generated source over ``max_source_bytes``, or a compiler failure.
    """
    if derivatives not in ("fd", "exact"):
        raise CompileError(f"unknown derivatives option {derivatives!r}",
                           fix="use 'fd' or 'exact'")
    if derivatives == "exact" and EXACT_BYTES_PER_STATE * system.n_states > max_source_bytes:
        estimate = EXACT_BYTES_PER_STATE * system.n_states
        raise CompileError(
            f"exact Jacobians of {system.n_states:,} states would generate at least "
            f"{estimate / 1e6:,.0f} MB of C (limit {max_source_bytes / 1e6:,.0f} MB)",
            fix="use derivatives='fd' (finite differences of the compiled functions: "
            f"about 8 times less C), or raise max_source_bytes={estimate}")
    link: tuple[str, ...] = ()
    if system.route == "network" and system.origin is not None:
        source, kwargs = system.origin
        found = blas_link_arguments() if blas in (None, True) else None
        if blas is True and found is None:
            raise CompileError("no BLAS with dgemm_ to link the generated C against "
                               "(CasADi's OpenBLAS was not found)",
                               fix="pass blas=None or blas=False (reference loops)")
        use_blas = found is not None and kwargs.get("blas", True)
        solver = kwargs.get("linear_solver")
        if solver is None and system.linear_solver not in _CODEGEN_SOLVERS:
            solver = "ldl"
        if use_blas != kwargs.get("blas", True) or solver != kwargs.get("linear_solver"):
            system = compile_system(source, **(kwargs | {"blas": use_blas,
                                                         "linear_solver": solver}))
        link = found if use_blas else ()
    if system.linear_solver not in _CODEGEN_SOLVERS:
        raise CompileError(
            f"{system.name!r} uses the linear solver {system.linear_solver!r}, whose "
            "generated C needs external libraries",
            fix="compile_system(..., linear_solver='qr') (generic) or 'ldl' (network) "
            "before generating C")
    fns = [system.rhs, system.unknowns, system.dae["function"]]
    if system.constraints is not None:
        fns.append(system.constraints)
    source = generate_source(fns, jacobians=("rhs", "dae") if derivatives == "exact" else ())
    lib = build_library(source, cache_dir=cache_dir, compiler=compiler, flags=flags,
                        link=link)
    path = str(lib.path)

    opts = {"enable_fd": True} if derivatives == "fd" else {}

    def load(name: str) -> ca.Function:
        try:
            return ca.external(name, path, opts)
        except RuntimeError as exc:
            raise CompileError(f"cannot load {name!r} from {path}: "
                               f"{str(exc).strip().splitlines()[-1]}",
                               fix="delete the cache entry and build again") from None

    dae = dict(system.dae) | {"function": load("dae")}
    out = dataclasses.replace(
        system, rhs=load("rhs"), unknowns=load("unknowns"),
        constraints=load("constraints") if system.constraints is not None else None,
        dae=dae, library=lib, _cache={})
    return out
