"""The precision policy, each check in a fresh process (the suite itself runs in float64)."""
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, env_x64: str | None = None) -> str:
    import os
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    if env_x64 is not None:
        env["JAX_ENABLE_X64"] = env_x64
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_import_leaves_the_flag_and_training_still_runs_in_float64():
    out = _run("""
        import jax, jax.numpy as jnp
        import dlnfusion as dln
        assert jax.config.jax_enable_x64 is False
        spec = dln.NetworkSpec.fusion(2, 2, width=10)
        traj = dln.simulate(spec, dln.Stats.scalar_toy(2.0, 1.0, 0.3), seeds=[0], steps=2000)
        assert traj.loss.dtype.name == "float64" and traj.final_params.branches[0][0].dtype.name == "float64"
        assert jax.config.jax_enable_x64 is False and jnp.ones(2).dtype.name == "float32"
        print(repr(float(traj.crossing("A")[0])))
    """)
    # The same run in this (float64) process gives the same number to the last bit.
    import dlnfusion as dln
    traj = dln.simulate(dln.NetworkSpec.fusion(2, 2, width=10), dln.Stats.scalar_toy(2.0, 1.0, 0.3),
                        seeds=[0], steps=2000)
    assert float(out.strip()) == float(traj.crossing("A")[0])


def test_documented_ways_to_get_float64_in_user_code():
    _run("""
        import jax, jax.numpy as jnp
        import dlnfusion as dln
        with dln.float64():
            assert jnp.ones(2).dtype.name == "float64"
        assert jnp.ones(2).dtype.name == "float32"
        dln.enable_float64()
        assert jax.config.jax_enable_x64 and jnp.ones(2).dtype.name == "float64"
    """)
    _run("""
        import jax, dlnfusion
        assert jax.config.jax_enable_x64 is True
    """, env_x64="1")


@pytest.mark.parametrize("x64", ["0", "1"])
def test_float32_training_on_request(x64):
    _run("""
        import numpy as np, jax
        import dlnfusion as dln
        spec = dln.NetworkSpec.fusion(2, 2, width=10, activation="relu")
        ds = dln.Stats.scalar_toy(2.0, 1.0, 0.3).sample(64, seed=0)
        traj = dln.simulate(spec, ds, seeds=[0], scale=0.3, steps=300, dtype="float32")
        assert traj.loss.dtype.name == "float32" and traj.final_loss.dtype.name == "float32"
        assert traj.final_params.branches[0][0].dtype.name == "float32"
        assert np.isfinite(traj.final_loss).all() and traj.final_loss[0] < traj.loss[0, 0]
    """, env_x64=x64)


def test_dtype_errors():
    import dlnfusion as dln
    spec = dln.NetworkSpec.fusion(2, 2, width=4)
    with pytest.raises(ValueError, match="dtype"):
        dln.simulate(spec, dln.Stats.scalar_toy(), seeds=[0], dtype="float16")
