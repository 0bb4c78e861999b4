"""Typed rules for the composed ``train`` and ``eval`` configs, checked before anything is built.

Hydra composes whatever a user types (``model.lr=-1``, ``data.batch_size=0``); left alone, such a
value fails much later, deep inside torch, as a traceback. :func:`check_config` checks every key
we set against its type, range or list of names, and raises one :class:`ConfigError` that lists
every bad value, one line each: ``model.lr=-1: must be > 0``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from emotion.checkpoint import model_source
from emotion.data.classes import SPLIT_NAMES, check_label_map
from emotion.data.datamodule import BALANCE_MODES
from emotion.errors import EmotionError
from emotion.models import TTA_MODES, list_models
from emotion.training.module import OPTIMIZERS, SCHEDULERS

__all__ = ["ConfigError", "Rules", "check_config", "TRAIN_RULES", "EVAL_RULES"]

_MISSING, _DERIVED = object(), object()


class ConfigError(EmotionError):
    """One or more bad configuration values; the message has one line per value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    """What one key accepts: ``check`` returns ``None`` when ``value`` is fine, else what is wrong."""

    key: str
    check: Callable[[Any], str | None]
    optional: bool = False  # the key may be absent or null
    missing: str = ""  # what to say when a required key has no value


# -- checks -------------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def integer(low: int) -> Callable[[Any], str | None]:
    return lambda v: None if _is_int(v) and v >= low else f"must be an integer >= {low}"


def number(low: float, high: float | None = None, low_open: bool = False,
           high_open: bool = True) -> Callable[[Any], str | None]:
    """A finite number in the interval from ``low`` to ``high``; ``*_open`` excludes that end."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    if high is None:
        want = f"> {low}" if low_open else f">= {low}"
    else:
        want = f"in {lo}{low}, {high}{hi}"

    def check(v: Any) -> str | None:
        if not _is_number(v):
            return f"must be a number {want}"
        if v < low or (low_open and v == low) or (high is not None and (v > high or (high_open and v == high))):
            return f"must be {want}"
        return None

    return check


def one_of(names: Callable[[], tuple[str, ...] | list[str]] | tuple[str, ...]) -> Callable[[Any], str | None]:
    """One of ``names``; a near miss gets a did-you-mean."""
    def check(v: Any) -> str | None:
        known = list(names() if callable(names) else names)
        if v in known:
            return None
        close = difflib.get_close_matches(str(v), known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"choose one of {', '.join(known)}{hint}"

    return check


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def text(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def known_arch(v: Any) -> str | None:
    """A registered model, ``timm`` (with ``model.name``) or ``timm/<architecture timm has>``."""
    from emotion.models.timm_models import check_timm_name, is_timm_name

    if v == "timm":
        return None
    if isinstance(v, str) and is_timm_name(v):
        try:
            return check_timm_name(v)
        except EmotionError as e:
            return str(e)
    return one_of(list_models)(v)


def accelerator(v: Any) -> str | None:
    from emotion.device import missing_accelerator

    known = ("auto", "cpu", "gpu", "cuda", "mps")
    if v not in known:
        return one_of(known)(v)
    return missing_accelerator(v)


def precision(v: Any) -> str | None:
    known = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
    return one_of(known)(str(v))


def checkpoint_or_list(v: Any) -> str | None:
    if isinstance(v, str) and v.strip():
        return None
    if isinstance(v, (list, tuple)) and v and all(isinstance(p, str) and p.strip() for p in v):
        return None
    return "must be a checkpoint path, or a list of them ([a.ckpt,b.ckpt]) for an ensemble"


def trained_model(v: Any) -> str | None:
    """A model :func:`emotion.checkpoint.load_model` can read: a bundled name, or a path that exists."""
    if not isinstance(v, str) or not v.strip():
        return "must be a .ckpt, an exported model folder, or a bundled model's name"
    if not model_source(v).exists():
        return f"'{v}' does not exist: give a .ckpt, an exported model folder (a member's model/), or a bundled name"
    return None


def distill_spec(v: Any) -> str | None:
    """``{weight: w in [0, 1], temperature: T > 0}`` (weight 1: the soft targets alone, as data=ferplus's
    cross-entropy on the vote distribution)."""
    if not isinstance(v, dict) or set(v) - {"weight", "temperature"}:
        return "must be {weight: 0.5, temperature: 2.0} or null"
    for key, check in (("weight", number(0, 1, high_open=False)), ("temperature", number(0, low_open=True))):
        why = check(v[key]) if key in v else None
        if why:
            return f"{key} {why}"
    return None


def _distill_has_teacher(cfg: DictConfig) -> str | None:
    if _value(cfg, "model.distill") in (None, _MISSING) or _value(cfg, "data.soft_labels") not in (None, _MISSING):
        return None
    if _value(cfg, "data.mode") == "crossentropy":
        return None  # data=ferplus: the vote distributions are the soft targets
    return ("model.distill needs the teacher's probabilities: pass data.soft_labels=<file> "
            "(experiments/make_soft_labels.py) or data.soft_labels=ferplus (the FER+ votes)")


def _cycles_fit_the_run(cfg: DictConfig) -> str | None:
    cycles, epochs = _value(cfg, "model.cycles"), _value(cfg, "trainer.max_epochs")
    if not _is_int(cycles) or cycles <= 1 or not _is_int(epochs) or epochs < 1:
        return None
    if _value(cfg, "model.scheduler") != "cosine":
        return f"model.cycles={cycles} restarts a cosine schedule: set model.scheduler=cosine (or model.cycles=1)"
    if epochs % cycles:
        return (f"model.cycles={cycles} must divide trainer.max_epochs={epochs}, so that every cycle, and its "
                f"snapshot, ends with an epoch")
    return None


class Rules(list):
    """A list of :class:`Rule` (one key each) and ``joint``: the checks that read two keys or more, run after
    them by :func:`check_config`."""

    def __init__(self, rules: list[Rule], joint: list[Callable[[DictConfig], str | None]] = ()) -> None:
        super().__init__(rules)
        self.joint = list(joint)


# -- the rules ----------------------------------------------------------------------------------
_DATA = [
    Rule("data.root", text),
    Rule("data.batch_size", integer(1)),
    Rule("data.num_workers", integer(0)),
    Rule("data.image_size", integer(16)),
    Rule("data.val_fraction", number(0, 1, low_open=True)),
    Rule("data.seed", integer(0)),
    Rule("data.balance", one_of(BALANCE_MODES)),
    Rule("data.pin_memory", boolean),
    Rule("data.label_map", check_label_map, optional=True),
    Rule("data.soft_labels", text, optional=True),
    Rule("data.ferplus", text, optional=True),
    Rule("data.mode", one_of(("majority", "crossentropy")), optional=True),
]
#: Where and in what precision a run computes: what evaluation needs of the trainer too.
_DEVICE = [
    Rule("trainer.accelerator", accelerator),
    Rule("trainer.devices", lambda v: None if v == "auto" or (_is_int(v) and v >= 1) or isinstance(v, list)
         else "must be an integer >= 1, a list of device ids, or auto"),
    Rule("trainer.precision", precision),
]
_TRAINER = [
    *_DEVICE,
    Rule("trainer.max_epochs", integer(1)),
    Rule("trainer.min_epochs", integer(0), optional=True),
    Rule("trainer.num_nodes", integer(1), optional=True),
    Rule("trainer.accumulate_grad_batches", integer(1)),
    Rule("trainer.check_val_every_n_epoch", integer(1)),
    Rule("trainer.log_every_n_steps", integer(1)),
    Rule("trainer.num_sanity_val_steps", integer(-1)),
    Rule("trainer.gradient_clip_val", number(0, low_open=True), optional=True),
]
TRAIN_RULES = Rules([
    *_DATA,
    Rule("model.arch", known_arch),
    Rule("model.name", text, optional=True),
    Rule("model.drop_path_rate", number(0, 1), optional=True),
    Rule("model.num_classes", integer(2)),
    Rule("model.in_chans", integer(1)),
    Rule("model.input_size", integer(16)),
    Rule("model.drop_rate", number(0, 1)),
    Rule("model.optimizer", one_of(OPTIMIZERS)),
    Rule("model.lr", number(0, low_open=True)),
    Rule("model.momentum", number(0, 1), optional=True),
    Rule("model.weight_decay", number(0)),
    Rule("model.scheduler", one_of(SCHEDULERS)),
    Rule("model.warmup_epochs", integer(0), optional=True),
    Rule("model.cycles", integer(1), optional=True),
    Rule("model.plateau_patience", integer(0), optional=True),
    Rule("model.label_smoothing", number(0, 1)),
    Rule("model.mixup_alpha", number(0)),
    Rule("model.cutmix_alpha", number(0)),
    Rule("model.distill", lambda v: distill_spec(v), optional=True),
    *_TRAINER,
    Rule("logger.wandb.project", text, optional=True),
    Rule("logger.wandb.offline", boolean, optional=True),
    Rule("logger.wandb.log_model", lambda v: None if v in (True, False, "all") else "must be true, false or all",
         optional=True),
    Rule("callbacks.model_checkpoint.mode", one_of(("max", "min")), optional=True),
    Rule("callbacks.early_stopping.patience", integer(0), optional=True),
    Rule("callbacks.early_stopping.mode", one_of(("max", "min")), optional=True),
    Rule("callbacks.ema.decay", number(0, 1, low_open=True), optional=True),
    Rule("seed", integer(0)),
    Rule("test", boolean),
    Rule("tta", one_of((*TTA_MODES, "auto"))),
    Rule("ckpt_path", text, optional=True),
    Rule("init_from", trained_model, optional=True),
    Rule("optimized_metric", text, optional=True),
], joint=[_distill_has_teacher, _cycles_fit_the_run])
EVAL_RULES = Rules([
    *_DATA,
    *_DEVICE,
    Rule("ckpt_path", checkpoint_or_list, missing=(
        "say which checkpoint to evaluate: python -m emotion.evaluate "
        "ckpt_path=outputs/train/runs/<time>/checkpoints/epoch_NNN.ckpt "
        "(or ckpt_path=[a.ckpt,b.ckpt] for an ensemble)")),
    Rule("split", one_of(tuple(SPLIT_NAMES))),
    Rule("tta", one_of(TTA_MODES)),
    Rule("seed", integer(0)),
])


def _value(cfg: DictConfig, key: str) -> Any:
    """The resolved value at ``key``, ``None`` for null, :data:`_MISSING` where absent or ``???``,
    :data:`_DERIVED` where it is an interpolation (``data.image_size: ${model.input_size}``): the
    key it comes from is checked itself, and a problem is reported once."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node or OmegaConf.is_missing(node, part):
            return _MISSING
        if OmegaConf.is_interpolation(node, part):
            return _DERIVED
        node = node[part]
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _show(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(map(str, v)) + "]"
    return "null" if v is None else str(v)


def check_config(cfg: DictConfig, rules: list[Rule] = TRAIN_RULES) -> None:
    """Check ``cfg`` against ``rules``, then their joint checks (:class:`Rules`).

    Raises:
        ConfigError: listing every bad value as ``key=value: what is wrong``.
    """
    problems = []
    for rule in rules:
        v = _value(cfg, rule.key)
        if v is _DERIVED:
            continue
        if v is _MISSING or v is None:
            if not rule.optional:
                problems.append(f"{rule.key} is missing: {rule.missing or f'pass {rule.key}=...'}")
            continue
        why = rule.check(v)
        if why:
            problems.append(f"{rule.key}={_show(v)}: {why}")
    problems += [why for check in getattr(rules, "joint", ()) if (why := check(cfg))]
    if problems:
        raise ConfigError(problems)
