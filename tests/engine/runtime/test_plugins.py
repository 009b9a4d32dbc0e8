"""Third-party plugins: a real wheel installed with pip into a temporary directory, discovered
through the ``redes`` entry-point group in a fresh interpreter."""

import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.tiny_data import DATA, write_tiny_npz

ROOT = Path(__file__).resolve().parents[3]

PLUGIN = textwrap.dedent('''
    """A third-party layer: y = x * x (elementwise), CPU kernels only."""
    import numpy as np
    from numba import njit

    from engine import Layer, hookimpl


    class _Kernels:
        @staticmethod
        @njit(cache=False)
        def square_forward(x, y):
            for i in range(x.shape[0]):
                y[i] = x[i] * x[i]

        @staticmethod
        @njit(cache=False)
        def square_backward(x, dy, dx):
            for i in range(x.shape[0]):
                dx[i] = 2.0 * x[i] * dy[i]


    class Square(Layer):
        """y = x ** 2 elementwise; any shape."""

        name = "square"
        kernels = {"cpu": _Kernels}

        def forward(self, x, *, train=False):
            y = np.empty_like(x)
            self.k.square_forward(x.reshape(-1), y.reshape(-1))
            return y, x

        def backward(self, x, dy):
            dx = np.empty_like(dy)
            self.k.square_backward(x.reshape(-1), dy.reshape(-1), dx.reshape(-1))
            return dx


    @hookimpl
    def register_layers(register):
        register(Square)
''')

BROKEN = "raise ImportError('this plugin is broken on purpose')\n"
MISSPELT = textwrap.dedent('''
    from engine import hookimpl

    @hookimpl
    def register_layerz(register):
        pass
''')


def build_wheel(tmp_path, dist, module, source, group="redes"):
    """A minimal valid wheel: the module, METADATA, WHEEL, entry_points.txt and RECORD."""
    info = f"{dist}-0.1.dist-info"
    files = {
        f"{module}.py": source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[{group}]\n{dist} = {module}\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = tmp_path / f"{dist}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


def pip_install(wheel, target):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-compile", "--disable-pip-version-check", "--target", str(target), str(wheel)],
                   check=True)


def python(code, site, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    env.pop("REDES_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, cwd=site.parent, timeout=600)


SPEC = DATA + """
[model]
layers = [ { type = "dense", units = 8 }, { type = "square" }, { type = "dense", units = 10 } ]
[optimizer]
type = "sgd"
lr = 0.01
[trainer]
epochs = 1
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugin")
    site = tmp / "site"
    for dist, module, source, group in [
        ("redes_square", "redes_square", PLUGIN, "redes"),
        ("redes_broken", "redes_broken", BROKEN, "redes.plugins"),
    ]:
        pip_install(build_wheel(tmp, dist, module, source, group), site)
    (tmp / "spec.toml").write_text(SPEC)
    write_tiny_npz(tmp)
    return site


def test_third_party_layer_found_checked_and_trained(site):
    code = textwrap.dedent("""
        import numpy as np
        from engine import testing
        from engine.runtime import plugins
        layer_cls = plugins.registry("layers").get("square")
        assert plugins.provider(layer_cls) == "redes_square", plugins.provider(layer_cls)
        assert any("redes_broken" in name for name, _ in plugins.load_failures), plugins.load_failures
        layer = testing.build_layer("square", (5,))
        assert testing.gradcheck(layer, np.random.default_rng(0).uniform(-2, 2, (3, 5)))
        from cli import main
        import sys
        sys.argv = ["redes", "run", "spec.toml", "--json", "--quiet"]
        main()
    """)
    done = python(code, site)
    assert done.returncode == 0, done.stderr
    assert '"test_accuracy"' in done.stdout
    assert "redes_broken" in done.stderr and "broken on purpose" in done.stderr


def test_checkpoint_records_the_distribution_and_says_to_install_it(site, tmp_path):
    import json

    import h5py

    out = tmp_path / "square.h5"
    done = python("from cli import main; main()", site, "run", "spec.toml", "--quiet", "--out",
                  str(out))
    assert done.returncode == 0, done.stderr
    with h5py.File(out) as f:
        recorded = json.loads(f.attrs["plugins"])["redes_square"]
    assert recorded == {"module": "redes_square", "distribution": "redes_square", "version": "0.1",
                        "components": ["layers:square"]}
    assert python("from cli import main; main()", site, "eval", str(out)).returncode == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # the distribution is not installed here
    done = subprocess.run([sys.executable, "-m", "cli", "eval", str(out)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "trained with layers:square from plugin 'redes_square', which is not available" in message
    assert "install the 'redes_square' distribution (version 0.1 was used)" in message


def test_plugins_command_lists_third_party(site):
    done = python("from cli import main; import sys; sys.argv=['redes','plugins']; main()", site)
    assert done.returncode == 0, done.stderr
    assert "square" in done.stdout and "redes_square" in done.stdout


def test_misspelt_hook_is_a_clear_startup_error(tmp_path):
    site = tmp_path / "site"
    pip_install(build_wheel(tmp_path, "redes_typo", "redes_typo", MISSPELT), site)
    done = python("from cli import main; import sys; sys.argv=['redes','plugins']; main()", site)
    assert done.returncode != 0
    assert "register_layerz" in done.stderr and "Traceback" not in done.stderr
    assert "did you mean 'register_layers'?" in done.stderr and done.stderr.count("\n") == 1


def test_commands_name_clashes_and_unknown_groups_name_the_plugins():
    from engine import hookimpl
    from engine.runtime import plugins
    from engine.errors import PluginError

    def learning_speed():
        """Clashes with plugins.callbacks' command."""

    class Clash:
        @hookimpl
        def register_commands(self, register):
            register(learning_speed, name="learning-speed", group="plot")

    class Elsewhere:
        @hookimpl
        def register_commands(self, register):
            register(learning_speed, name="learning-speed", group="show")

    messages = []
    for plugin in (Clash(), Elsewhere()):
        plugins.pm.register(plugin)
        try:
            with pytest.raises(PluginError) as caught:
                plugins.commands()
        finally:
            plugins.pm.unregister(plugin)
        messages.append(str(caught.value))
    clash, elsewhere = messages
    assert clash.startswith("two plugins register the command `redes plot learning-speed`: ")
    assert "'plugins.callbacks'" in clash and "'tests.engine.runtime.test_plugins'" in clash  # either order
    assert elsewhere.startswith("plugin 'tests.engine.runtime.test_plugins' registers command 'learning-speed' "
                                "in group 'show'")
    assert sorted((c.group or "", c.name, c.plugin) for c in plugins.commands()) == [
        ("plot", "codes", "plugins.autoencoder"), ("plot", "learning-speed", "plugins.callbacks"),
        ("plot", "reconstructions", "plugins.autoencoder")]  # the built-in ones (sample and plot filters are the engine's)
