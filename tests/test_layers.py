"""The layering rule of docs/design.md: the core imports neither mlflow nor keras/tensorflow."""

import subprocess
import sys

CORE = ["curves", "plateau", "gap", "scaling", "forecast", "stopping", "verdict",
        "comparison", "grouping", "rules", "pruning", "options", "numerics"]


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


def test_public_names_of_design_are_exported():
    import mlflow_plateau

    for name in ["early_stopping_replay", "plateau_epoch", "generalization_gap", "scaling_fit",
                 "diagnose_curves"]:
        assert callable(getattr(mlflow_plateau, name))
