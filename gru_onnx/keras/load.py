"""Reading Keras model files (``.keras``, legacy ``.h5``) on the torch backend, ``safe_mode=True``."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from gru_onnx.errors import GruOnnxUsageError
from gru_onnx.files import regular_file
from gru_onnx.keras.backend import import_keras, keras2_hard_sigmoid
from gru_onnx.loading import import_user_module
from gru_onnx.options import KerasOptions

_KERAS_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def _file_keras_version(path: Path) -> str | None:
    """The ``keras_version`` attribute of a legacy HDF5 file (None for ``.keras`` archives)."""
    if path.suffix.lower() not in (".h5", ".hdf5"):
        return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version")
    except Exception:
        return None
    return version.decode() if isinstance(version, bytes) else (str(version) if version is not None else None)


def _use_keras2_hard_sigmoid(model: Any) -> list[str]:
    """Give every layer of ``model`` that uses ``hard_sigmoid`` Keras 2's; return the layer names."""
    keras = import_keras()
    changed = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        holders = [layer.cell] if hasattr(layer, "cell") else [layer]
        for holder in holders:
            for attr in ("activation", "recurrent_activation"):
                if getattr(holder, attr, None) is keras.activations.hard_sigmoid:
                    setattr(holder, attr, keras2_hard_sigmoid)
                    changed.append(layer.name)
    return sorted(set(changed))


def load_keras_model(
    path: str | os.PathLike[str], options: KerasOptions = KerasOptions()  # noqa: B008 (frozen)
) -> tuple[Any, list[str]]:
    """Load a ``.keras`` or legacy ``.h5`` model (``safe_mode=True``) on the torch backend, after
    importing ``options.imports`` (the modules that register the file's custom classes).

    Returns the model and notes for the user. For a file written by Keras 2, layers using
    ``hard_sigmoid`` get Keras 2's definition back (Keras 3 would read it as its own), so the
    model, the export and a parity check against Keras all mean what was trained.
    """
    keras = import_keras(set_backend=True)
    for name in options.imports:
        import_user_module(name, "--import")
    path = Path(path)
    if not os.path.lexists(path):
        raise GruOnnxUsageError(f"Keras model not found: {path}")
    regular_file(path, "Keras model")
    if path.suffix.lower() not in _KERAS_FILE_SUFFIXES:
        raise GruOnnxUsageError(f"{path} is not a Keras model file (.keras, or legacy .h5)")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise GruOnnxUsageError(f"{path} is not a Keras archive (a .keras file is a zip archive Keras 3 writes)")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        missing = missing_classes(path, keras)
        if missing:
            raise GruOnnxUsageError(f"cannot read Keras model {path}: {missing}") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GruOnnxUsageError(f"cannot read Keras model {path}: {first[:300]}") from None
    if not isinstance(model, keras.Model):
        raise GruOnnxUsageError(f"{path} does not hold a Keras model")
    notes = []
    version = _file_keras_version(path)
    if version is not None and version.split(".")[0] in ("1", "2"):
        changed = _use_keras2_hard_sigmoid(model)
        if changed:
            notes.append(
                f"{path.name} was written by Keras {version}: hard_sigmoid in {', '.join(changed)} is read with "
                "Keras 2's meaning, clip(0.2 x + 0.5, 0, 1) (Keras 3 alone would read relu6(x + 3) / 6)"
            )
    return model, notes




def _config(path: Path) -> Any:
    """The model config a Keras file holds (``config.json`` of a ``.keras`` archive, the
    ``model_config`` attribute of a legacy ``.h5``), or None when it cannot be read."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as f:
            text = f.attrs.get("model_config")
        return json.loads(text.decode() if isinstance(text, bytes) else text) if text is not None else None
    except Exception:
        return None


def _classes(config: Any) -> list[dict[str, Any]]:
    """Every serialized object (``class_name`` with ``module``) in a Keras config, depth first."""
    found = []
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str) and "module" in config:
            found.append(config)
        for value in config.values():
            found += _classes(value)
    elif isinstance(config, list):
        for value in config:
            found += _classes(value)
    return found


def missing_classes(path: Path, keras: Any) -> str | None:
    """One line naming the custom classes of the file that are not registered in this process,
    with the ``--import`` that would register them, or None when none is missing."""
    missing: dict[str, str] = {}
    for entry in _classes(_config(path)):
        module = str(entry.get("module") or "")
        if module.startswith("keras") or module in ("builtins", ""):
            continue
        registered = entry.get("registered_name") or entry["class_name"]
        if keras.saving.get_registered_object(registered) is None:
            missing.setdefault(registered, module)
    if not missing:
        return None
    named = ", ".join(f"{name} (module {module!r})" for name, module in missing.items())
    imports = " ".join(f"--import {module}" for module in dict.fromkeys(missing.values()))
    return (
        f"it uses custom Keras classes not registered in this process: {named}; import the code that registers "
        f"them first: {imports} (in Python: gru_onnx.KerasOptions(imports=...))"
    )
