"""Every model, experiment, trainer and logger config composes and resolves."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from emotion.config import CONFIG_DIR
from emotion.models import list_models
from tests.helpers import compose_cfg

MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONFIG_DIR / "trainer").glob("*.yaml"))
LOGGERS = sorted(p.stem for p in (CONFIG_DIR / "logger").glob("*.yaml"))
AUGMENTS = sorted(p.stem for p in (CONFIG_DIR / "data/augment").glob("*.yaml"))


def test_every_registered_model_has_a_config():
    assert set(list_models()) <= set(MODELS), "add conf/model/<name>.yaml for each registered model"


@pytest.mark.parametrize("model", MODELS)
def test_model_configs(tmp_path, model):
    cfg = compose_cfg(tmp_path, [f"model={model}"])
    assert cfg.model.arch == model
    assert cfg.data.image_size == cfg.model.input_size
    module = instantiate(cfg.model)
    # model=timm names its architecture in model.name; the checkpoint records the resolved timm/<name>.
    assert module.hparams.arch == (f"timm/{cfg.model.name}" if model == "timm" else model)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_configs(tmp_path, experiment):
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}"])
    if cfg.model.arch == "timm":  # experiment=timm_cpu: any timm architecture, named in model.name
        from emotion.models.timm_models import check_timm_name

        assert check_timm_name(f"timm/{cfg.model.name}") is None
    else:
        assert cfg.model.arch in list_models()
    assert cfg.trainer.max_epochs >= 1


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trainer_configs(tmp_path, trainer):
    cfg = compose_cfg(tmp_path, [f"trainer={trainer}"])
    assert cfg.trainer.precision in ("32-true", "bf16-mixed")


@pytest.mark.parametrize("logger", LOGGERS)
def test_logger_configs(tmp_path, logger):
    cfg = compose_cfg(tmp_path, [f"logger={logger}"])
    assert (not cfg.logger) == (logger == "none")


@pytest.mark.parametrize("augment", AUGMENTS)
def test_augment_configs_keep_48px_uint8(tmp_path, augment):
    import numpy as np

    cfg = compose_cfg(tmp_path, [f"data/augment={augment}"])
    aug = instantiate(cfg.data.augment)
    out = aug(image=np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8))["image"]
    assert out.shape == (48, 48) and out.dtype == np.uint8


@pytest.mark.parametrize("trainer", ["default", "cpu"])
def test_trainer_precision_is_the_automatic_choice(tmp_path, trainer):
    from emotion.device import choose_precision

    cfg = compose_cfg(tmp_path, [f"trainer={trainer}"])
    assert cfg.trainer.precision == choose_precision(cfg.trainer.accelerator)[0]


def test_native_bf16_is_read_from_the_cpu():
    from emotion.device import cpu_has_native_bf16

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo")
    flags = set(next((ln.split(":", 1)[1].split() for ln in cpuinfo.read_text().splitlines()
                      if ln.startswith("flags")), []))
    assert cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("cuda,gpu_bf16,cpu_bf16,accelerator,want", [
    (False, False, True, "auto", "bf16-mixed"),
    (False, False, True, "cpu", "bf16-mixed"),
    (False, False, False, "cpu", "32-true"),   # emulated bf16 would be slower than fp32
    (True, True, False, "auto", "bf16-mixed"),
    (True, False, True, "gpu", "32-true"),     # an old GPU: the CPU's bf16 is beside the point
    (True, True, False, "cpu", "32-true"),     # CPU asked for on a GPU machine: the CPU decides
])
def test_choose_precision(monkeypatch, cuda, gpu_bf16, cpu_bf16, accelerator, want):
    import torch

    from emotion import device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: gpu_bf16)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: cpu_bf16)
    precision, why = device.choose_precision(accelerator)
    assert precision == want and why


def test_eval_config(tmp_path):
    cfg = compose_cfg(tmp_path, ["ckpt_path=x.ckpt", "tta=flip"], config_name="eval")
    assert cfg.split == "test" and cfg.tta == "flip"
