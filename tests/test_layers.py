"""The layering rule of docs/design.md: the core imports neither mlflow nor keras/tensorflow; no
module of the package is over 600 lines or imports a private name of another."""

import subprocess
import sys

import pytest

CORE = ["curves", "plateau", "gap", "scaling", "forecast", "forecast_fit", "stopping", "verdict",
        "verdict_scaling", "diagnosis", "wording", "comparison", "grouping", "rules", "reading",
        "rules_chance", "rules_shape", "pruning", "options", "numerics", "theil", "epoch_ranges"]
SHELL = ("mlflow", "keras", "tensorflow", "torch", "matplotlib", "pandas")


@pytest.mark.parametrize("module", CORE)
def test_each_core_module_alone_imports_no_shell_package(module):
    """Every core module, imported alone in a fresh interpreter, loads none of the shell's
    packages (mlflow, keras/tensorflow/torch, matplotlib, and pandas at import time): a core
    function may accept a DataFrame, but importing it must not cost pandas."""
    code = (f"import sys\nimport mlflow_plateau.{module}\n"
            f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({SHELL!r}))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"mlflow_plateau.{module} imports {out.stdout.strip()}"


def test_core_modules_import_no_mlflow_or_keras():
    code = (
        "import sys\n"
        + "".join(f"import mlflow_plateau.{m}\n" for m in CORE)
        + "import mlflow_plateau\n"
        "mlflow_plateau.diagnose_curves; mlflow_plateau.scaling_fit\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mlflow', 'keras', 'tensorflow', 'torch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


RENDER = ["figures", "curves_plot", "scaling_plot", "comparison_plot", "pool", "pages"]


def test_render_modules_import_no_mlflow_or_keras():
    """render/ only renders: it never talks to MLflow (the tracking package uploads its output)."""
    code = (
        "import sys\n"
        + "".join(f"import mlflow_plateau.render.{m}\n" for m in RENDER)
        + "import mlflow_plateau.report\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mlflow', 'keras', 'tensorflow', 'torch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_module_of_the_package_stays_small_and_imports_no_private_names():
    """Every module of the package (core, render/, tracking/, cli/, faces): no module over 600
    lines, nothing private taken from another module of the package."""
    import ast
    from pathlib import Path

    import mlflow_plateau

    folder = Path(mlflow_plateau.__file__).parent
    paths = sorted(folder.rglob("*.py"))
    assert folder / "cli" / "diagnose.py" in paths  # the packages are walked, not only the top
    for path in paths:
        name = path.relative_to(folder).as_posix()
        source = path.read_text(encoding="utf-8")
        assert source.count("\n") <= 600, f"{name} has {source.count(chr(10))} lines"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (
                    node.level or (node.module or "").split(".")[0] == "mlflow_plateau"):
                private = [a.name for a in node.names if a.name.startswith("_")
                           and a.name != "__version__"]
                assert not private, f"{name} imports private {private} from {node.module}"


CLI = ["parser", "output", "selection", "diagnose", "scaling", "curves", "compare", "export"]


def test_cli_modules_and_help_import_no_mlflow():
    """The command's modules import mlflow only when a command reads a store: importing them
    and printing every command's --help stays fast."""
    code = (
        "import contextlib, io, sys\n"
        + "".join(f"import mlflow_plateau.cli.{m}\n" for m in CLI)
        + "from mlflow_plateau.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for c in ([], ['diagnose'], ['scaling'], ['import'], ['curves'], ['compare'],\n"
        "              ['export']):\n"
        "        assert main([*c, '--help']) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mlflow', 'keras', 'tensorflow', 'torch', 'pandas', 'matplotlib'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_core_module_hides_a_public_name_of_the_package():
    """Importing a submodule sets the package attribute of its name: a module named like a
    public function (``scaling_verdict``) would hide it once imported."""
    code = (
        "import importlib, types\n"
        + "".join(f"import mlflow_plateau.{m}\n" for m in CORE)
        + "import mlflow_plateau as p\n"
        "core = " + repr(CORE) + "\n"
        "names = [n for n, m in p._PUBLIC.items() if m in core]\n"
        "print(','.join(n for n in names if isinstance(getattr(p, n), types.ModuleType)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_of_design_are_exported():
    import mlflow_plateau

    for name in ["early_stopping_replay", "plateau_epoch", "generalization_gap", "scaling_fit",
                 "diagnose_curves"]:
        assert callable(getattr(mlflow_plateau, name))
