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
truncated or altered library fails the digest check and is rebuilt. The SHA-256 of the
generated source is compiled into the library (:func:`embed_source_hash`) and checked
when an entry is reused, so a library of another system in this slot is rebuilt, never
loaded; entries that are not regular files (a FIFO) are never opened; build folders of
killed builds are removed by the next build (:func:`clean_stale_builds`); a source over
``max_generated_bytes`` is refused before compiling (:func:`check_source_size`). Two
processes that build the same entry at once both succeed (the renames are atomic; the
last one wins with identical content).

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
import errno
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import casadi as ca

from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.errors import CompileError

__all__ = ["Library", "cache_directory", "generate_source", "build_library", "codegen_system",
           "blas_link_arguments", "check_source_size", "clean_stale_builds",
           "embed_source_hash", "source_hash", "DEFAULT_FLAGS",
           "DEFAULT_MAX_GENERATED_BYTES", "STALE_BUILD_SECONDS"]

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
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompileError(f"cannot use the cache directory {path}: "
                           f"{exc.strerror or exc}",
                           fix="point COGNITIVE_ACTION_CACHE (or cache_dir) at a folder "
                           "you can write to") from None
    return path


#: Fewest bytes of C that CasADi writes per instruction of a scalar (SX) function (one
#: statement such as ``a12=(a3*a5);``; measured 87-250 bytes per instruction with the
#: functions' overhead on the shipped problems): the bound that refuses a source over
#: the budget before it is written out.
_BYTES_PER_SX_INSTRUCTION = 10


def generate_source(functions: Sequence[ca.Function], *, jacobians: Sequence[str] = (),
                    max_generated_bytes: int | None = None) -> str:
    """C source of CasADi functions, with ``jac_<name>`` for the names in ``jacobians``
    (what ``casadi.external`` looks for when an integrator needs a Jacobian).

    The source is refused over ``max_generated_bytes`` (:func:`check_source_size`):
    before it is written out when the scalar functions' instruction count already
    guarantees it (at least 10 bytes per instruction), else once written.

    Raises
    ------
    CompileError
        A function CasADi cannot generate C for, or a source over the size budget.
    """
    budget = _budget(max_generated_bytes)
    cg = ca.CodeGenerator("cognitive_action_generated.c", {"with_header": False})
    instructions = 0
    for fn in functions:
        try:
            parts = [fn] + ([fn.jacobian()] if fn.name() in jacobians else [])
            for f in parts:
                if f.is_a("SXFunction"):
                    instructions += f.n_instructions()
            low = _BYTES_PER_SX_INSTRUCTION * instructions
            if low > budget:
                raise CompileError(
                    f"the generated C would be at least {low / 2**20:.1f} MB "
                    f"({instructions} scalar instructions), over the budget "
                    f"max_generated_bytes = {budget} ({budget / 2**20:.1f} MB)",
                    fix=_SIZE_FIX)
            for f in parts:
                cg.add(f)
        except RuntimeError as exc:
            raise CompileError(f"CasADi cannot generate C for {fn.name()!r}: "
                               f"{str(exc).strip().splitlines()[-1]}",
                               fix="use the linear solver 'qr' or 'ldl', whose C is "
                               "self-contained") from None
    source = cg.dump()
    check_source_size(source, budget)
    return source


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


#: Generated C above this many bytes is refused before it is written or compiled
#: (``max_generated_bytes``; ``COGNITIVE_ACTION_MAX_GENERATED_BYTES`` overrides it). The
#: dense 200-neuron network route generates about 3 MB; ``derivatives="exact"`` on a
#: ``[20, 40, 40, 20]`` net's scalar route generated 876 MB that gcc did not finish.
DEFAULT_MAX_GENERATED_BYTES = 64 * 2**20
#: Build folders and temporary files of this age (seconds) are removed at the next
#: build even when their owner cannot be checked (another host, a reused PID).
STALE_BUILD_SECONDS = 24 * 3600
_MARKER = b"cognitive_action source sha256="
_HOST = "".join(c if c.isalnum() else "_" for c in platform.node())[:32] or "host"


def source_hash(source: str) -> str:
    """SHA-256 of generated C: what :func:`embed_source_hash` writes into the library."""
    return hashlib.sha256(source.encode()).hexdigest()


def embed_source_hash(source: str) -> str:
    """``source`` with its own SHA-256 compiled into the library: an exported constant
    string (found in the file's bytes without loading it) and a function returning it.

    A library put into another entry's slot, with a checksum file that matches it,
    carries the other source's hash and is refused at load (:func:`build_library`).

    Examples
    --------
    >>> src = embed_source_hash("int x;")
    >>> source_hash("int x;") in src and "cognitive_action_source_sha256" in src
    True
    """
    digest = source_hash(source)
    return (f"{source}\n/* cognitive_action: the SHA-256 of the source above */\n"
            f"__attribute__((used)) const char cognitive_action_source_sha256[] = "
            f"\"{_MARKER.decode()}{digest}\";\n"
            "const char* cognitive_action_source_hash(void) {\n"
            "  return cognitive_action_source_sha256 + "
            f"{len(_MARKER)};\n}}\n")


def _regular(path: Path) -> bool | None:
    """``True`` for a regular file, ``False`` for anything else that exists (a FIFO, a
    device, a socket, a symbolic link, a folder), ``None`` when nothing is there."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None


def _read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file, never blocking: the type is checked with ``lstat``
    and again on the open descriptor (``O_NONBLOCK``, no symbolic links), so a FIFO or a
    device swapped in between is not read.

    Raises
    ------
    OSError
        Not a regular file (``EINVAL``), or larger than ``limit``.
    """
    if not _regular(path):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if limit is not None and st.st_size > limit:
            raise OSError(errno.EFBIG, "too large", str(path))
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _embedded_hash(data: bytes) -> str | None:
    """The source hash compiled into a library (:func:`embed_source_hash`), if any."""
    k = data.find(_MARKER)
    if k < 0:
        return None
    return data[k + len(_MARKER):k + len(_MARKER) + 64].decode("ascii", "replace")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{_HOST}-{os.getpid()}-",
                               suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _clear_slot(path: Path) -> None:
    """Remove whatever is not a regular file at a cache path (a FIFO, a device, a link)
    so the entry can be written; a folder there is an error to report."""
    if _regular(path) is False:
        if path.is_dir() and not path.is_symlink():
            raise CompileError(f"the cache entry {path} is a folder",
                               fix="remove it, or use another cache_dir")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _check(lib: Path, digest_file: Path, expected: str) -> str | None:
    """Why the cache entry cannot be used (``None``: it can): missing, not a regular
    file, a digest that does not match, or a library built from another source."""
    kinds = {name: _regular(p) for name, p in (("library", lib), ("digest", digest_file))}
    if None in kinds.values():
        return "missing"
    odd = [name for name, ok in kinds.items() if not ok]
    if odd:
        return f"the {' and '.join(odd)} is not a regular file"
    try:
        data = _read_regular(lib)
        digest = _read_regular(digest_file, limit=4096).decode("ascii", "replace").strip()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if digest != hashlib.sha256(data).hexdigest():
        return "its digest does not match"
    got = _embedded_hash(data)
    if got != expected:
        return (f"it was built from another source (embedded hash {str(got)[:12]}, "
                f"expected {expected[:12]})")
    return None


def _owner_gone(name: str) -> bool:
    """Whether the process that named a build folder or temporary file
    (``.build-<host>-<pid>-...``) is gone; ``False`` when it cannot be told."""
    parts = name.split("-")
    if len(parts) < 4 or parts[1] != _HOST or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


def clean_stale_builds(root: Path, *, max_age: float = STALE_BUILD_SECONDS) -> list[Path]:
    """Remove the build folders and temporary files that killed builds left in the
    cache: those whose owner process (on this host) is gone, and any older than
    ``max_age`` seconds. Builds that are running are left alone.

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    now = time.time()
    for entry in root.iterdir():
        if not entry.name.startswith((".build-", ".tmp-")):
            continue
        try:
            age = now - os.lstat(entry).st_mtime
        except FileNotFoundError:
            continue
        if not (_owner_gone(entry.name) or age > max_age):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


def _budget(max_generated_bytes: int | None) -> int:
    if max_generated_bytes is not None:
        return int(max_generated_bytes)
    env = os.environ.get("COGNITIVE_ACTION_MAX_GENERATED_BYTES")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise CompileError(f"COGNITIVE_ACTION_MAX_GENERATED_BYTES = {env!r} is not a "
                               "number", fix="set it to a number of bytes, e.g. 2e8") from None
    return DEFAULT_MAX_GENERATED_BYTES


_SIZE_FIX = ("use derivatives='fd' (about 8x less C) or the network route, or raise the "
             "budget: codegen_system(..., max_generated_bytes=...) or the environment "
             "variable COGNITIVE_ACTION_MAX_GENERATED_BYTES")


def check_source_size(source: str, max_generated_bytes: int | None = None) -> int:
    """Refuse generated C over the size budget before it is written or compiled.

    Returns
    -------
    int
        The source's size in bytes.

    Raises
    ------
    CompileError
        Naming the size, the setting ``max_generated_bytes`` and how to raise it.
    """
    size = len(source.encode())
    budget = _budget(max_generated_bytes)
    if size > budget:
        raise CompileError(
            f"the generated C is {size / 2**20:.1f} MB, over the budget "
            f"max_generated_bytes = {budget} ({budget / 2**20:.1f} MB): the compiler "
            "would take very long on it",
            fix=_SIZE_FIX)
    return size


def build_library(source: str, *, cache_dir: str | os.PathLike | None = None,
                  compiler: str | None = None, flags: Sequence[str] = DEFAULT_FLAGS,
                  link: Sequence[str] = (),
                  max_generated_bytes: int | None = None) -> Library:
    """Compile C source into a shared library in the cache (or reuse a valid entry).

    ``link`` are linker arguments placed after the source (libraries, e.g.
    :func:`blas_link_arguments`); they are part of the cache key like ``flags``.

    The SHA-256 of ``source`` is compiled into the library
    (:func:`embed_source_hash`) and checked whenever the entry is reused, with the
    digest file beside it: an entry built from another source, truncated, or replaced
    by something that is not a regular file (a FIFO is never opened for reading) is
    rebuilt, with a warning. Build folders of killed builds are removed first
    (:func:`clean_stale_builds`).

    Parameters
    ----------
    max_generated_bytes
        Refuse a source larger than this (default :data:`DEFAULT_MAX_GENERATED_BYTES`,
        or ``$COGNITIVE_ACTION_MAX_GENERATED_BYTES``) before compiling.

    Raises
    ------
    CompileError
        No compiler, a source over the size budget, or the compiler failed (its last
        lines of output quoted).
    """
    size = check_source_size(source, max_generated_bytes)
    cc = _compiler(compiler)
    flags, link = tuple(flags), tuple(link)
    ext = ".dll" if sys.platform == "win32" else (".dylib" if sys.platform == "darwin" else ".so")
    key = hashlib.sha256("\0".join(
        [source, _compiler_id(cc), " ".join(flags), " ".join(link), ca.__version__,
         sys.platform]
    ).encode()).hexdigest()[:32]
    expected = source_hash(source)
    root = cache_directory(cache_dir)
    lib = root / f"ca_{key}{ext}"
    digest_file = root / f"ca_{key}.sha256"
    why = _check(lib, digest_file, expected)
    if why is None:
        return Library(path=lib, key=key, cached=True, source_bytes=size)
    if why != "missing":
        warnings.warn(f"the cached library {lib.name} cannot be used ({why}); building it "
                      "again", RuntimeWarning, stacklevel=2)
    clean_stale_builds(root)
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(dir=root, prefix=f".build-{_HOST}-{os.getpid()}-")
    try:
        c_file = Path(tmp) / f"ca_{key}.c"
        c_file.write_text(embed_source_hash(source))
        out_file = Path(tmp) / f"ca_{key}{ext}"
        cmd = [cc, *flags, str(c_file), "-o", str(out_file), *link, "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out_file.is_file():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise CompileError(f"the C compiler failed ({' '.join(cmd[:2])} ...): {tail}",
                               fix="check the compiler and flags; generated code needs only "
                               "libm")
        data = out_file.read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if _embedded_hash(data) != expected:
        raise CompileError("the compiled library does not carry its source's hash (the "
                           "compiler dropped an exported constant)",
                           fix="use gcc or clang without -fvisibility or section "
                           "garbage collection flags")
    for p in (lib, digest_file):
        _clear_slot(p)
    _atomic_write(lib, data)
    _atomic_write(digest_file, hashlib.sha256(data).hexdigest().encode())
    return Library(path=lib, key=key, cached=False, source_bytes=size,
                   compile_time=time.perf_counter() - t0)


#: Bytes of C per state that exact Jacobians add at least: measured 17-22 kB on layered
#: nets of 38-460 states (0.66-10 MB of C) and 132 kB at 6,640 states ([20, 40, 40, 20]:
#: 876 MB), so this lower bound never overestimates.
EXACT_BYTES_PER_STATE = 17_000


def codegen_system(system: CompiledSystem, *, cache_dir: str | os.PathLike | None = None,
                   compiler: str | None = None, flags: Sequence[str] = DEFAULT_FLAGS,
                   derivatives: str = "fd", blas: bool | None = None,
                   max_generated_bytes: int | None = None) -> CompiledSystem:
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
    max_generated_bytes
        The size budget of the generated C (:func:`check_source_size`; default
        :data:`DEFAULT_MAX_GENERATED_BYTES` or ``$COGNITIVE_ACTION_MAX_GENERATED_BYTES``):
        a larger source is refused before anything is written or compiled. With
        ``derivatives="exact"`` the size is estimated from the number of states before
        anything is generated (:data:`EXACT_BYTES_PER_STATE`, a measured lower bound): a
        ``[20, 40, 40, 20]`` net would generate 876 MB of C.

    Raises
    ------
    CompileError
        A linear solver whose C is not self-contained (use ``qr`` or ``ldl``), a source
        over the size budget, or a compiler failure.
    """
    if derivatives not in ("fd", "exact"):
        raise CompileError(f"unknown derivatives option {derivatives!r}",
                           fix="use 'fd' or 'exact'")
    budget = _budget(max_generated_bytes)
    if derivatives == "exact" and EXACT_BYTES_PER_STATE * system.n_states > budget:
        estimate = EXACT_BYTES_PER_STATE * system.n_states
        raise CompileError(
            f"exact Jacobians of {system.n_states:,} states would generate at least "
            f"{estimate / 1e6:,.0f} MB of C (limit {budget / 1e6:,.0f} MB)",
            fix="use derivatives='fd' (finite differences of the compiled functions: "
            f"about 8 times less C), or raise max_generated_bytes={estimate}")
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
    source = generate_source(fns, jacobians=("rhs", "dae") if derivatives == "exact" else (),
                             max_generated_bytes=max_generated_bytes)
    lib = build_library(source, cache_dir=cache_dir, compiler=compiler, flags=flags,
                        link=link, max_generated_bytes=max_generated_bytes)
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
