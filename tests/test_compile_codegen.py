"""Generated C against the CasADi virtual machine, and the disk cache.

The compiled library and the VM evaluate the same functions at random points (1e-13)
and give the same ``erk`` trajectories; the cache is reused, a corrupted or truncated
entry is rebuilt, two processes building one entry at once both succeed, and the cache
location follows ``COGNITIVE_ACTION_CACHE``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import casadi as ca
import numpy as np
import pytest
import sympy as sp
from references import pendulum

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate
from cognitive_action.compile.codegen import (
    build_library,
    cache_directory,
    codegen_system,
    generate_source,
)
from cognitive_action.declare import symbols as S
from cognitive_action.errors import CompileError

pytestmark = pytest.mark.skipif(
    not any(os.access(os.path.join(d, c), os.X_OK) for d in os.environ.get("PATH", "").split(":")
            for c in ("cc", "gcc", "clang")),
    reason="no C compiler")


@pytest.fixture(scope="module")
def xor():
    pr = ca_.xor().problem(inputs={1: sp.sin(S.t), 2: sp.cos(2 * S.t)}, targets={5: 0.5})
    el = ca_.euler_lagrange(pr)
    rng = np.random.default_rng(1)
    given = {str(w): rng.normal() * 0.5 for w in ca_.xor().weights} | {"m_x": 1.0, "m_W": 2.0}
    return pr, ca_.complete_initial_conditions(el, given)


def _agree(vm, c, rng, params):
    pv = vm.parameter_vector(params)
    for _ in range(5):
        y = rng.normal(size=vm.n_states) * 0.5
        t = float(rng.uniform(0, 3))
        np.testing.assert_allclose(c.evaluate(t, y, pv), vm.evaluate(t, y, pv), rtol=1e-13,
                                   atol=1e-13)
        u_vm, u_c = vm.evaluate_unknowns(t, y, pv), c.evaluate_unknowns(t, y, pv)
        np.testing.assert_allclose(list(u_c.values()), list(u_vm.values()), rtol=1e-13,
                                   atol=1e-13)
        for a, b in zip(c.evaluate_constraints(t, y, pv), vm.evaluate_constraints(t, y, pv)):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("route", ["network", "generic"])
def test_generated_c_agrees_with_the_vm(xor, tmp_path, route):
    pr, ic = xor
    vm = compile_system(pr, route=route)
    c = codegen_system(vm, cache_dir=tmp_path)
    assert c.library is not None and not c.library.cached
    assert c.library.path.parent == tmp_path
    assert c.library.source_bytes < 100_000  # MX/SX graphs, not scalarized per weight
    _agree(vm, c, np.random.default_rng(0), {"m_x": 1.0, "m_W": 2.0})
    a = simulate(vm, (0, 5), ic, method="erk", rtol=1e-9, atol=1e-11)
    b = simulate(c, (0, 5), ic, method="erk", rtol=1e-9, atol=1e-11)
    assert np.max(np.abs(a.y - b.y)) < 1e-8
    # implicit methods run on finite-difference Jacobians of the compiled functions
    d = simulate(c, (0, 5), ic, method="cvodes", rtol=1e-9, atol=1e-11)
    assert np.max(np.abs(d.y - a.y)) < 1e-5 and d.max_drift < 1e-5


def test_exact_derivatives_and_the_pendulum(tmp_path):
    vm = compile_system(pendulum())
    c = codegen_system(vm, cache_dir=tmp_path, derivatives="exact")
    _agree(vm, c, np.random.default_rng(1), {"m": 1.2, "g": 9.81, "L": 0.8})
    y0 = {"q1": 0.0, "q2": 1.0, "q1_dot": 0.0, "q2_dot": 0.0}
    params = {"m": 1.0, "g": 9.81, "L": 1.0}
    for method in ("cvodes", "idas"):
        a = simulate(vm, (0, 3), y0, params, method=method, rtol=1e-10, atol=1e-12)
        b = simulate(c, (0, 3), y0, params, method=method, rtol=1e-10, atol=1e-12)
        assert np.max(np.abs(a.y - b.y)) < 1e-7, method


def test_cache_is_reused_and_a_corrupt_entry_rebuilt(tmp_path):
    vm = compile_system(pendulum())
    first = codegen_system(vm, cache_dir=tmp_path).library
    again = codegen_system(vm, cache_dir=tmp_path).library
    assert again.cached and again.path == first.path and again.compile_time == 0.0
    # corrupt the library: the digest no longer matches, so it is rebuilt
    first.path.write_bytes(b"\x7fELF garbage")
    with pytest.warns(RuntimeWarning, match="digest does not match"):
        rebuilt = codegen_system(vm, cache_dir=tmp_path)
    assert not rebuilt.library.cached
    _agree(vm, rebuilt, np.random.default_rng(2), {"m": 1.0, "g": 9.81, "L": 1.0})
    # a missing digest counts as corrupt too
    (tmp_path / f"ca_{first.key}.sha256").unlink()
    assert not codegen_system(vm, cache_dir=tmp_path).library.cached
    assert codegen_system(vm, cache_dir=tmp_path).library.cached
    # different flags, different entry
    other = codegen_system(vm, cache_dir=tmp_path, flags=("-O1", "-fPIC", "-shared"))
    assert other.library.key != first.key
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not leftovers  # temporary files and build directories are gone


def test_two_processes_build_one_entry_at_once(tmp_path):
    script = textwrap.dedent(f"""
        import casadi as ca, sys
        from cognitive_action.compile.codegen import build_library, generate_source
        x = ca.SX.sym("x", 50)
        f = ca.Function("f", [x], [ca.sum1(ca.tanh(x) * ca.sin(x) + x ** 3)])
        lib = build_library(generate_source([f]), cache_dir={str(tmp_path)!r})
        g = ca.external("f", str(lib.path))
        print(lib.key, float(g([0.5] * 50)))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    results = {o[0].strip() for o in outs}
    assert len(results) == 1  # same key, same value in every process
    key, value = results.pop().split()
    assert float(value) == pytest.approx(50 * (np.tanh(0.5) * np.sin(0.5) + 0.125))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ca_{key}.sha256", f"ca_{key}.so"]


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("COGNITIVE_ACTION_CACHE", str(tmp_path / "env"))
    assert cache_directory() == tmp_path / "env" and (tmp_path / "env").is_dir()
    assert cache_directory(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("COGNITIVE_ACTION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_directory() == tmp_path / "xdg" / "cognitive_action" / "c"


def test_typed_errors(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CompileError, match="cache directory"):
        cache_directory(tmp_path / "afile")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CompileError, match="cache directory"):
        cache_directory(tmp_path / "fifo")
    with pytest.raises(CompileError, match="C compiler failed"):
        build_library("this is not C;", cache_dir=tmp_path)
    with pytest.raises(CompileError, match="no C compiler"):
        build_library("int x;", cache_dir=tmp_path, compiler="no-such-cc-here")
    vm = compile_system(pendulum(), linear_solver="lapacklu")
    with pytest.raises(CompileError, match="lapacklu"):
        codegen_system(vm, cache_dir=tmp_path)
    with pytest.raises(CompileError, match="derivatives"):
        codegen_system(compile_system(pendulum()), cache_dir=tmp_path, derivatives="ad")
    x = ca.SX.sym("x")
    src = generate_source([ca.Function("sq", [x], [x * x])])
    assert "sq" in src and len(src) < 20_000


def test_dense_products_call_blas_in_generated_c(tmp_path):
    """The dense net's eq. (10) products are ``dgemm_`` calls linked against CasADi's
    OpenBLAS; the BLAS and the reference-loop libraries both equal the hand-written NumPy
    right-hand side (an independent reference) at random states."""
    from pathlib import Path

    from cognitive_action.compile.codegen import blas_link_arguments

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_compile import VALUES, dense_problem, numpy_rhs_factory

    if blas_link_arguments() is None:
        pytest.skip("no BLAS shipped with this CasADi build")
    n = 12
    values = VALUES | {f"y{n - 1}": 0.25}
    vm = compile_system(ca_.derive_network(dense_problem(n)[1]))
    with_blas = codegen_system(vm, cache_dir=tmp_path)
    loops = codegen_system(vm, cache_dir=tmp_path, blas=False)
    assert with_blas.library.key != loops.library.key
    src_blas = generate_source([compile_system(vm.origin[0], blas=True).rhs])
    src_loops = generate_source([compile_system(vm.origin[0], blas=False).rhs])
    assert "CASADI_BLAS_DGEMM(" in src_blas and "CASADI_BLAS_DGEMM(" not in src_loops
    rhs_np = numpy_rhs_factory(n, values)
    pv = vm.parameter_vector({k: values[k] for k in vm.parameters})
    rng = np.random.default_rng(4)
    for _ in range(3):
        y = rng.normal(size=vm.n_states) * 0.3
        ref = rhs_np(0.5, y)
        for system in (with_blas, loops):
            got = system.evaluate(0.5, y, pv)
            assert np.abs(got - ref).max() < 1e-12 * np.abs(ref).max()


# -- the cache under hostile conditions (issue 17) --------------------------------------
def _square_and_cube():
    x = ca.SX.sym("x")
    return (generate_source([ca.Function("f", [x], [x * x])]),
            generate_source([ca.Function("f", [x], [x * x * x])]))


def test_a_library_of_another_source_in_a_slot_is_rebuilt_not_loaded(tmp_path):
    """Another system's library put in this slot together with a checksum file that
    matches it passed the digest check and gave wrong numbers; the hash of the source
    compiled into the library now refuses it (rebuilt, with a warning)."""
    import shutil

    square, cube = _square_and_cube()
    a = tmp_path / "a"
    b = tmp_path / "b"
    lib_a = build_library(square, cache_dir=a)
    lib_b = build_library(cube, cache_dir=b)
    assert lib_a.key != lib_b.key
    shutil.copyfile(lib_b.path, lib_a.path)
    shutil.copyfile(b / f"ca_{lib_b.key}.sha256", a / f"ca_{lib_a.key}.sha256")
    with pytest.warns(RuntimeWarning, match="built from another source"):
        again = build_library(square, cache_dir=a)
    assert not again.cached and again.path == lib_a.path
    assert float(ca.external("f", str(again.path))(3.0)) == 9.0  # x², not x³ = 27
    assert build_library(square, cache_dir=a).cached


def test_a_library_without_the_embedded_hash_is_rebuilt(tmp_path):
    """An entry built before the hash was embedded (or by hand) is not trusted."""
    import hashlib

    square, _ = _square_and_cube()
    lib = build_library(square, cache_dir=tmp_path)
    data = lib.path.read_bytes().replace(b"cognitive_action source sha256=",
                                         b"something else entirely here!=")
    lib.path.write_bytes(data)
    (tmp_path / f"ca_{lib.key}.sha256").write_text(hashlib.sha256(data).hexdigest())
    with pytest.warns(RuntimeWarning, match="another source"):
        assert not build_library(square, cache_dir=tmp_path).cached


@pytest.mark.parametrize("which", ["digest", "library", "both"])
def test_a_fifo_in_a_cache_slot_never_blocks(tmp_path, which):
    """A FIFO in place of the checksum file hung the build (it was opened for reading
    with no writer). Types are checked with lstat before anything is opened; the FIFO
    is replaced by the rebuilt entry. An alarm turns a hang into a failure."""
    import signal

    square, _ = _square_and_cube()
    lib = build_library(square, cache_dir=tmp_path)
    digest = tmp_path / f"ca_{lib.key}.sha256"
    for path in {"digest": [digest], "library": [lib.path],
                 "both": [digest, lib.path]}[which]:
        path.unlink()
        os.mkfifo(path)

    def hang(signum, frame):
        raise TimeoutError("build_library blocked on a FIFO")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)
    try:
        with pytest.warns(RuntimeWarning, match="not a regular file"):
            again = build_library(square, cache_dir=tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert not again.cached
    assert again.path.is_file() and digest.is_file()
    assert float(ca.external("f", str(again.path))(3.0)) == 9.0


def test_a_killed_build_leaves_nothing_behind_after_the_next_build(tmp_path):
    """A build killed while the compiler runs (SIGKILL, no cleanup) leaves its
    ``.build-*`` folder; the next build removes it (its owner is gone) and keeps the
    folders of builds that are still running."""
    import signal
    import time

    from cognitive_action.compile.codegen import _HOST

    cc = tmp_path / "slow-cc"
    cc.write_text('#!/bin/sh\n[ "$1" = --version ] || sleep 30\nexec cc "$@"\n')
    cc.chmod(0o755)
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import casadi as ca
        from cognitive_action.compile.codegen import build_library, generate_source
        x = ca.SX.sym("x")
        build_library(generate_source([ca.Function("f", [x], [x * x])]),
                      cache_dir={str(cache)!r}, compiler={str(cc)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
            cache.is_dir() and any(p.name.startswith(".build-") for p in cache.iterdir())):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    left = [p for p in cache.iterdir() if p.name.startswith(".build-")]
    assert len(left) == 1 and (left[0] / next(iter(os.listdir(left[0])))).exists()
    running = cache / f".build-{_HOST}-{os.getpid()}-running"
    running.mkdir()
    old_foreign = cache / ".build-otherhost-1-old"
    old_foreign.mkdir()
    os.utime(old_foreign, (time.time() - 3 * 24 * 3600,) * 2)
    square, _ = _square_and_cube()
    build_library(square, cache_dir=cache)
    names = sorted(p.name for p in cache.iterdir() if p.name.startswith("."))
    assert names == [running.name]


def test_a_source_over_the_size_budget_is_refused_before_compiling(tmp_path, monkeypatch):
    square, _ = _square_and_cube()
    size = len(square.encode())
    with pytest.raises(CompileError, match="max_generated_bytes") as info:
        build_library(square, cache_dir=tmp_path, max_generated_bytes=size - 1,
                      compiler="no-such-cc-here")  # refused before the compiler is asked
    assert "COGNITIVE_ACTION_MAX_GENERATED_BYTES" in info.value.fix
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("COGNITIVE_ACTION_MAX_GENERATED_BYTES", str(size - 1))
    with pytest.raises(CompileError, match=f"max_generated_bytes = {size - 1}"):
        build_library(square, cache_dir=tmp_path)
    assert build_library(square, cache_dir=tmp_path, max_generated_bytes=size).path.is_file()
    vm = compile_system(pendulum())
    with pytest.raises(CompileError, match="max_generated_bytes"):
        codegen_system(vm, cache_dir=tmp_path, derivatives="exact",
                       max_generated_bytes=10_000)


def test_a_large_scalar_graph_is_refused_before_its_source_is_written():
    """A function whose instruction count alone guarantees a source over the budget is
    refused before CasADi writes the C (at least 10 bytes per instruction); the bound
    holds: the written source is larger."""
    x = ca.SX.sym("x", 50)
    expr = x
    for _ in range(20):
        expr = ca.sin(expr) * x + ca.cos(expr)
    f = ca.Function("big", [x], [ca.sum1(expr)])
    n = f.n_instructions()
    written = generate_source([f])
    assert len(written) > 10 * n
    with pytest.raises(CompileError, match="would be at least .* scalar instructions"):
        generate_source([f], max_generated_bytes=10 * n - 1)
    with pytest.raises(CompileError, match="max_generated_bytes"):  # after writing
        generate_source([f], max_generated_bytes=len(written) - 1)
    assert generate_source([f], max_generated_bytes=len(written)) == written
