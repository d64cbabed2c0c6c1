"""Where the Hydra configs live: inside the package in a wheel, at the repository's top level in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _config_dir() -> Path:
    # A wheel ships conf/ as fer_lightning/conf; an editable install or a source checkout reads the top-level conf/.
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no Hydra configs in {_PACKAGE / 'conf'} or {_PACKAGE.parent / 'conf'}: reinstall fer-lightning")


CONFIG_DIR: Path = _config_dir()
