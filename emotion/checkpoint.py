"""Safe checkpoint loading: tensors and plain values only (``weights_only=True``), never code."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emotion.device import best_device
from emotion.errors import EmotionError, first_line
from emotion.resources import ASSETS_DIR

__all__ = ["read_checkpoint", "load_model", "init_weights", "export_model", "export_onnx", "TrainedModel", "HParams",
           "DEFAULT_MODEL", "BUNDLED_MODELS", "ONNX_FILE", "model_source"]

#: The model shipped with the package (weights as safetensors + a JSON of hparams and metrics).
DEFAULT_MODEL = ASSETS_DIR / "default_model"
#: The models shipped with the package, by the names ``--checkpoint`` and ``from_checkpoint`` take:
#: ``default`` (what people would say a face shows: taught by the FER+ crowd), ``fast`` (for video and bulk
#: work) and ``fer2013`` (FER2013's own labels only: the one to compare with FER2013 papers). How each is
#: chosen: experiments/members/RULES.md.
BUNDLED_MODELS = {"default": DEFAULT_MODEL, "fast": ASSETS_DIR / "fast_model", "fer2013": ASSETS_DIR / "fer2013_model"}


def model_source(path: str | os.PathLike | None) -> Path:
    """Where a model is: a bundled one by name (``None``: ``default``), else the path given (a file
    or folder of that name wins over a bundled name)."""
    if path is None:
        return DEFAULT_MODEL
    if str(path) in BUNDLED_MODELS and not Path(path).exists():
        return BUNDLED_MODELS[str(path)]
    return Path(path).expanduser()
WEIGHTS_FILE, META_FILE, ONNX_FILE = "model.safetensors", "model.json", "model.onnx"


class HParams(dict):
    """A checkpoint's hyperparameters: a dict whose keys also read as attributes (``hp.input_size``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class TrainedModel(nn.Module):
    """A trained backbone with what made it, for inference without Lightning.

    Attributes:
        model: the network :func:`emotion.models.create_model` built (its keys match a checkpoint's).
        hparams: the training hyperparameters (``arch``, ``input_size``, ``class_names``, …).
        meta: what an export recorded (metrics, temperature, command); ``{}`` for a checkpoint.
    """

    def __init__(self, model: nn.Module, hparams: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.hparams = HParams(hparams)
        self.meta = meta or {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a Lightning checkpoint with ``weights_only=True``.

    Raises:
        EmotionError: if the file is missing, truncated, not a checkpoint of this project, or
            holds objects that would run code when unpickled.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise EmotionError(f"checkpoint '{path}' not found. Pass the path of a .ckpt written by emotion.train.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files; all mean the same
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if isinstance(e, pickle.UnpicklingError) and unsafe:
            raise EmotionError(
                f"refused to load '{path}': it holds Python objects beyond tensors and plain values "
                f"({unsafe.group(1)}), which could run code when loaded. Only load checkpoints you trust, "
                "with torch.load(weights_only=False) yourself."
            ) from None
        raise EmotionError(f"'{path}' is not a readable checkpoint (truncated or corrupt: {first_line(e)}). "
                           "Use another checkpoint of the run, or train again.") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise EmotionError(f"'{path}' is not an emotion checkpoint (no state_dict/hyper_parameters).")
    return ckpt


def _read_exported(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, meta_path = folder / WEIGHTS_FILE, folder / META_FILE
    for f in (weights, meta_path):
        if not f.is_file():
            raise EmotionError(f"exported model folder '{folder}' lacks {f.name}; re-export it with emotion.export.")
    try:
        meta = json.loads(meta_path.read_text())
        state = load_file(weights)
    except (json.JSONDecodeError, SafetensorError, OSError, ValueError) as e:
        raise EmotionError(f"exported model '{folder}' is corrupt ({str(e)[:200]}); re-export it.") from None
    if "hparams" not in meta:
        raise EmotionError(f"'{meta_path}' has no 'hparams'; re-export the model.")
    return meta["hparams"], state, meta


def model_meta(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """What an exported model recorded (its ``model.json``: metrics, ``protocol``, command), read without
    its weights; ``{}`` for a checkpoint, as :func:`load_model`'s ``meta``."""
    path = model_source(path)
    if not path.is_dir():
        return {}
    try:
        return json.loads((path / META_FILE).read_text())
    except (json.JSONDecodeError, OSError) as e:
        raise EmotionError(f"exported model '{path}' has no readable {META_FILE} ({str(e)[:200]}); "
                           "re-export it.") from None


def load_model(path: str | os.PathLike | None = None, device: str | torch.device | None = None) -> TrainedModel:
    """Load a trained model in eval mode, on the best device: :func:`~emotion.models.create_model`
    plus the weights, no Lightning.

    Args:
        path: a Lightning ``.ckpt`` written by ``emotion.train``, a folder written by
            :func:`export_model`, a bundled model's name (:data:`BUNDLED_MODELS`: ``default``,
            ``fast``), or ``None`` for the default bundled model.
        device: where to put it (default: :func:`best_device`).

    Only tensors and plain values are read. The model's ``meta`` attribute holds what the export
    recorded (metrics, temperature, command) or ``{}`` for a checkpoint. Calling the model on a batch
    from :func:`emotion.data.to_model_input` returns logits.
    """
    from emotion.models import create_model

    path = model_source(path)
    if path.is_dir():
        hparams, state, meta = _read_exported(path)
    else:
        ckpt = read_checkpoint(path)
        hparams, state, meta = ckpt["hyper_parameters"], ckpt["state_dict"], {}
    try:
        net = create_model(hparams["arch"], num_classes=hparams.get("num_classes", 7),
                           in_chans=hparams.get("in_chans", 1), drop_rate=hparams.get("drop_rate", 0.0),
                           channels_last=hparams.get("channels_last", True),
                           drop_path_rate=hparams.get("drop_path_rate", 0.0))
        model = TrainedModel(net, hparams, meta)
        model.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as e:
        raise EmotionError(f"'{path}': weights do not fit the recorded architecture ({str(e)[:300]}).") from None
    return model.to(device or best_device()).eval()


def init_weights(net: nn.Module, source: str | os.PathLike) -> tuple[list[str], list[str], dict[str, Any]]:
    """Start ``net`` from a trained model's weights (``init_from=`` in a training config): every tensor
    whose name and shape match is copied; the rest (a head with another number of classes, say) keep
    their fresh initialisation.

    Args:
        net: the network :func:`emotion.models.create_model` built for the new run.
        source: what :func:`load_model` reads: a ``.ckpt``, an exported folder (a member's ``model/``),
            or a bundled model's name.

    Returns:
        The names copied, the names left as they were, and the source's ``meta`` (what its export
        recorded, such as the labels that taught it: ``protocol``; ``{}`` for a checkpoint).

    Raises:
        EmotionError: the source is unreadable, or is another architecture (no tensor fits).
    """
    trained = load_model(source, device="cpu")
    donor, own = trained.model.state_dict(), net.state_dict()
    copied = [k for k, v in own.items() if k in donor and donor[k].shape == v.shape]
    if not any(own[k].is_floating_point() and own[k].dim() > 1 for k in copied):
        raise EmotionError(f"init_from={source}: none of its weights fit this model (is it the same arch?). "
                           "Choose a model of the same architecture, or drop init_from.")
    with torch.no_grad():
        for k in copied:
            own[k].copy_(donor[k].to(own[k].dtype))
    return copied, [k for k in own if k not in copied], dict(trained.meta)


def export_model(ckpt_path: str | os.PathLike, out_dir: str | os.PathLike, dtype: torch.dtype | None = None,
                 class_bias: list[float] | None = None, **meta: Any) -> Path:
    """Write a checkpoint's weights (safetensors, as trained or cast to ``dtype``: ``torch.float16``
    halves the file) and a JSON of its hparams plus ``meta``. ``class_bias`` (one value per class) is
    added to the bias of the net's last linear layer, so every tool that loads the export sees the
    adjusted logits (recorded as ``class_bias`` in the JSON).

    The result loads with :func:`load_model` (into fp32) and holds no pickle at all.
    """
    from safetensors.torch import save_file

    from emotion.io import atomic_path, write_json

    ckpt = read_checkpoint(ckpt_path)
    out = Path(out_dir)
    state = dict(ckpt["state_dict"])
    if class_bias is not None:
        key = _last_linear_bias(ckpt)
        if len(class_bias) != len(state[key]):
            raise EmotionError(f"class_bias has {len(class_bias)} values, the model {len(state[key])} classes.")
        state[key] = state[key].float() + torch.tensor(class_bias, dtype=torch.float32)
        meta["class_bias"] = [float(b) for b in class_bias]
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
             for k, v in state.items()}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    write_json(out / META_FILE, {"hparams": dict(ckpt["hyper_parameters"]), **meta})
    return out


def _last_linear_bias(ckpt: dict[str, Any]) -> str:
    """The state-dict key of the bias of the net's last ``nn.Linear`` (its logits)."""
    from emotion.models import create_model

    hp = ckpt["hyper_parameters"]
    net = create_model(hp["arch"], num_classes=hp.get("num_classes", 7), in_chans=hp.get("in_chans", 1))
    linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise EmotionError(f"{hp['arch']} has no linear layer to carry a class bias.")
    key = f"model.{linears[-1]}.bias"
    if key not in ckpt["state_dict"]:
        raise EmotionError(f"{hp['arch']}: its last linear layer has no bias ({key}).")
    return key


def export_onnx(model: TrainedModel, path: str | os.PathLike) -> Path:
    """Write ``model``'s network as ONNX: a batch from :func:`emotion.data.to_model_input`
    (``faces``, N×C×S×S float32, any N) → ``logits``. The calibration temperature is not in it.
    """
    import copy
    import warnings

    from emotion.io import atomic_path

    hp = model.hparams
    net = copy.deepcopy(model.model).float().cpu().eval()
    example = torch.zeros(2, hp.get("in_chans", 1), hp.get("input_size", 48), hp.get("input_size", 48))
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter
        # The TorchScript exporter: one self-contained file, in 3 s; the dynamo one writes the
        # weights beside it as external data and takes 5× longer for the same graph here.
        torch.onnx.export(net, (example,), str(tmp), input_names=["faces"], output_names=["logits"],
                          dynamic_axes={"faces": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    return path
