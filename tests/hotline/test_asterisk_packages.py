"""pyst2 and asterisk-ami both install ``asterisk/__init__.py`` into the same folder.

Whichever wheel is installed last owns that file, and uninstalling either one deletes it. The
install is still deterministic in what matters: neither ``__init__.py`` imports anything
(pyst2's sets ``__all__``/``__version__``, asterisk-ami's sets ``__author__``/``__version__``),
so ``asterisk.ami`` and ``asterisk.agi`` import whichever file won, and even with the file gone
``asterisk`` still imports as an implicit namespace package.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import asterisk

IMPORT_BOTH = "import asterisk.agi, asterisk.ami; print(asterisk.ami.AMIClient, asterisk.agi.AGI)"


def test_both_packages_import_in_a_fresh_interpreter() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_BOTH], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "AMIClient" in result.stdout
    assert "AGI" in result.stdout


def test_either_init_file_or_none_at_all_still_imports_both(tmp_path: Path) -> None:
    installed = Path(asterisk.__file__ or "").parent
    six_spec = importlib.util.find_spec("six")
    assert six_spec is not None and six_spec.origin is not None
    six_module = Path(six_spec.origin)
    variants = {
        "pyst2": "__all__ = ['agi', 'agitb', 'config', 'manager']\n__version__ = '0.5.1'\n",
        "asterisk-ami": "__author__ = 'ettore'\n__version__ = '0.1.7'\n",
        "neither": None,
    }
    for name, init_text in variants.items():
        site = tmp_path / name
        shutil.copytree(installed, site / "asterisk", ignore=shutil.ignore_patterns("__pycache__"))
        init = site / "asterisk" / "__init__.py"
        # pyst2's agi needs six; copy it beside, since -S below hides site-packages.
        shutil.copy(six_module, site)
        if init_text is None:
            init.unlink()
        else:
            init.write_text(init_text)
        # -S: no site-packages, so only this copy of the folder can answer the import.
        result = subprocess.run(
            [sys.executable, "-S", "-c", IMPORT_BOTH + "; print(list(asterisk.__path__))"],
            capture_output=True,
            text=True,
            check=False,
            cwd=site,
            env={"PYTHONPATH": str(site)},
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert str(site) in result.stdout
