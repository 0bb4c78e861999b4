"""``EmotionClassifier``: the LightningModule that joins a registered backbone to training."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from emotion.checkpoint import TrainedModel, read_checkpoint
from emotion.data.classes import CLASS_NAMES
from emotion.errors import EmotionError
from emotion.models import check_tta, create_model, predict_proba
from emotion.models.layout import cpu_training_memory_format

__all__ = ["EmotionClassifier"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "onecycle", "plateau", "none")


class EmotionClassifier(pl.LightningModule):
    """Facial-expression classifier. Every argument is a plain value saved in the checkpoint,
    so ``EmotionClassifier.load_from_checkpoint(path)`` rebuilds it in one line.

    Args:
        arch: registered model name (see :func:`emotion.models.list_models`).
        num_classes: number of expression classes.
        in_chans: input channels.
        input_size: side length of the model input (faces are upsampled from 48 if larger).
        drop_rate: dropout before the classifier.
        optimizer: ``sgd`` (Nesterov momentum) or ``adamw``.
        lr: peak learning rate.
        momentum: SGD momentum.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        scheduler: ``cosine`` (with linear warm-up), ``onecycle``, ``plateau`` (on val/acc) or ``none``.
        warmup_epochs: linear warm-up length for ``cosine``.
        cycles: ``cosine`` run as this many equal cycles, each from the peak LR (SGDR without growth): the
            end of each cycle is a snapshot-ensemble member (``callbacks=snapshots``); 1: one decay.
        plateau_patience: epochs without val/acc improvement before ``plateau`` halves the LR.
        label_smoothing: cross-entropy label smoothing.
        mixup_alpha: Beta(α, α) mixup on training batches (0: off).
        cutmix_alpha: Beta(α, α) CutMix on training batches (0: off); with mixup, one is picked per batch.
        class_weights: per-class loss weights (e.g. from ``data.balance=loss``), or ``None``.
        class_names: label names, in class-id order.
        channels_last: NHWC conv weights (see :func:`~emotion.models.create_model`).
        name: with ``arch="timm"``, the timm architecture (``model=timm model.name=resnet26d``);
            the checkpoint records ``arch`` as ``timm/<name>``.
        drop_path_rate: stochastic depth of a timm model.
        distill: knowledge distillation, ``{weight: w, temperature: T}``: the loss is
            ``(1 - w) · CE(labels) + w · T² · KL(teacher_T ‖ student_T)`` with the teacher's
            probabilities from ``data.soft_labels``; ``None``: labels only.
    """

    def __init__(self, arch: str = "resnet18", num_classes: int = 7, in_chans: int = 1,
                 input_size: int = 48, drop_rate: float = 0.0, optimizer: str = "sgd",
                 lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4,
                 scheduler: str = "cosine", warmup_epochs: int = 0, cycles: int = 1, plateau_patience: int = 5,
                 label_smoothing: float = 0.0, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                 class_weights: list[float] | None = None,
                 class_names: list[str] | tuple[str, ...] = CLASS_NAMES, channels_last: bool = True,
                 name: str | None = None, drop_path_rate: float = 0.0,
                 distill: dict[str, float] | None = None) -> None:
        super().__init__()
        if arch == "timm":
            if not name:
                raise EmotionError("model=timm needs model.name, a timm architecture (e.g. resnet26d, convnext_atto).")
            arch = f"timm/{name}"
        if optimizer not in OPTIMIZERS:
            raise EmotionError(f"model.optimizer={optimizer!r}: choose one of {', '.join(OPTIMIZERS)}.")
        if scheduler not in SCHEDULERS:
            raise EmotionError(f"model.scheduler={scheduler!r}: choose one of {', '.join(SCHEDULERS)}.")
        if int(cycles) < 1 or (int(cycles) > 1 and scheduler != "cosine"):
            raise EmotionError(f"model.cycles={cycles}: restarts need model.scheduler=cosine and cycles >= 1.")
        class_names = list(class_names)
        class_weights = None if class_weights is None else [float(w) for w in class_weights]
        if distill is not None:
            distill = {"weight": float(distill.get("weight", 0.5)),
                       "temperature": float(distill.get("temperature", 2.0))}
        self.save_hyperparameters()
        self.hparams.distill = distill  # a plain dict, not an OmegaConf node, in the checkpoint
        self.hparams.arch = arch  # resolved, so that loading for inference needs nothing else
        self.model = create_model(arch, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
                                  channels_last=channels_last, drop_path_rate=drop_path_rate)
        weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weight", weight, persistent=False)
        self.tta = "none"  # test-time augmentation for val/test steps; set by emotion.evaluate
        metrics = MetricCollection({
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
            "class_acc": MulticlassAccuracy(num_classes, average="none"),
        })
        # nn.ModuleDict can't hold a key named "train" (it is a Module method), hence the suffix.
        self.metrics = nn.ModuleDict({f"{s}_": metrics.clone(prefix=f"{s}/") for s in ("train", "val", "test")})
        self.confmat = nn.ModuleDict({f"{s}_": MulticlassConfusionMatrix(num_classes) for s in ("val", "test")})
        self.val_acc_best = MaxMetric()
        #: Confusion matrices (rows: true class) of the last completed val/test epoch.
        self.confusion: dict[str, np.ndarray] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # -- steps -------------------------------------------------------------------
    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=self.class_weight,
                               label_smoothing=self.hparams.label_smoothing)

    def _mix(self, x: torch.Tensor):
        """Mixup or CutMix: returns mixed inputs, the partner permutation (``None``: no mixing) and the
        mixing weight."""
        hp = self.hparams
        modes = [m for m, a in (("mixup", hp.mixup_alpha), ("cutmix", hp.cutmix_alpha)) if a > 0]
        if not modes:
            return x, None, 1.0
        mode = modes[int(torch.randint(len(modes), (1,)))]
        alpha = hp.mixup_alpha if mode == "mixup" else hp.cutmix_alpha
        lam = float(np.random.beta(alpha, alpha))
        perm = torch.randperm(x.size(0), device=x.device)
        if mode == "mixup":
            return lam * x + (1 - lam) * x[perm], perm, lam
        h, w = x.shape[-2:]
        ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(torch.randint(h, (1,))), int(torch.randint(w, (1,)))
        y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        return x, perm, 1 - (y1 - y0) * (x1 - x0) / (h * w)

    def _distill_loss(self, logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Hinton et al.'s soft-target term: KL between the tempered teacher and student, times T²."""
        t = self.hparams.distill["temperature"]
        soft_teacher = torch.softmax(teacher.clamp_min(1e-8).log() / t, dim=1)
        return F.kl_div(F.log_softmax(logits.float() / t, dim=1), soft_teacher, reduction="batchmean") * t * t

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, *soft = batch
        if self.hparams.distill is not None and not soft:
            raise EmotionError("model.distill needs the teacher's probabilities: pass data.soft_labels=<file>.")
        x, perm, lam = self._mix(x)
        logits = self(x)
        loss = self._loss(logits, y)
        if perm is not None:
            loss = lam * loss + (1 - lam) * self._loss(logits, y[perm])
        if self.hparams.distill is not None:
            teacher = soft[0] if perm is None else lam * soft[0] + (1 - lam) * soft[0][perm]
            w = self.hparams.distill["weight"]
            loss = (1 - w) * loss + w * self._distill_loss(logits, teacher)
        self.metrics["train_"].update(logits.detach(), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def _eval_step(self, batch, stage: str) -> None:
        x, y = batch
        if self.tta == "none":
            logits = self(x)
            loss, scores = self._loss(logits, y), logits
        else:
            scores = predict_proba(self.model, x, self.tta)
            loss = F.nll_loss(scores.clamp_min(1e-8).log(), y)
        self.metrics[f"{stage}_"].update(scores, y)
        self.confmat[f"{stage}_"].update(scores, y)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=stage == "val", batch_size=len(y), sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    # -- epoch ends ---------------------------------------------------------------
    def _log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        values = self.metrics[f"{stage}_"].compute()
        per_class = values.pop(f"{stage}/class_acc")
        self.log_dict(values, prog_bar=stage == "val", sync_dist=True)
        self.log_dict({f"{stage}/acc_{n}": v for n, v in zip(self.hparams.class_names, per_class)}, sync_dist=True)
        self.metrics[f"{stage}_"].reset()
        if f"{stage}_" in self.confmat:
            self.confusion[stage] = self.confmat[f"{stage}_"].compute().cpu().numpy()
            self.confmat[f"{stage}_"].reset()
        return values

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch("val")
        # Only the epochs of a fit count towards the best: not the sanity check, nor a later
        # trainer.validate (the record's TTA passes, which would otherwise raise val/acc_best).
        if self.trainer.state.fn == TrainerFn.FITTING and not self.trainer.sanity_checking:
            self.val_acc_best.update(values["val/acc"])
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # -- checkpoints ----------------------------------------------------------------
    # torchmetrics states are not in the state_dict; a resumed run must still know its best epoch.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["val_acc_best"] = float(self.val_acc_best.max_value)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        best = checkpoint.get("val_acc_best")
        if best is not None and math.isfinite(best):
            self.val_acc_best.update(torch.tensor(best))

    # -- optimisation ---------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # On the CPU the memory format is chosen by a measured rule that avoids a oneDNN crash
        # (emotion/models/layout.py); on a GPU the weights stay as built.
        if stage == TrainerFn.FITTING and self.trainer.strategy.root_device.type == "cpu":
            fmt, why = cpu_training_memory_format(self.model, self.trainer.precision, self.hparams.channels_last)
            self.model.to(memory_format=fmt)
            rank_zero_info(f"memory format {why}")

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        # No weight decay on norms and biases: standard practice, and it helps small nets.
        decay = [p for p in self.parameters() if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in self.parameters() if p.requires_grad and p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0)
        else:
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        if hp.scheduler == "none":
            return {"optimizer": opt}
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5,
                                                               patience=hp.plateau_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/acc", "interval": "epoch"}}
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if hp.scheduler == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=total)
        else:
            max_epochs = max(1, self.trainer.max_epochs or 1)
            warmup = min(total - 1, int(total * hp.warmup_epochs / max_epochs))
            cycles = int(hp.get("cycles", 1))  # checkpoints from before cycles existed have none
            if max_epochs % cycles:
                raise EmotionError(f"model.cycles={cycles} must divide trainer.max_epochs={max_epochs}.")
            cycle = total / cycles

            def cosine(step: int) -> float:
                if step < warmup:
                    return (step + 1) / (warmup + 1)
                k = min(cycles - 1, int(step // cycle))  # each cycle decays from the peak again
                start = max(warmup, k * cycle)
                progress = (step - start) / max(1, (k + 1) * cycle - start)
                return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None,
                             **kwargs: Any) -> "EmotionClassifier":
        """Lightning's loader, reading tensors and plain values only (``weights_only=True``).

        Raises:
            EmotionError: the file is missing, truncated, or holds objects that would run code.
        """
        if "://" not in str(checkpoint_path):  # a local file: check it first, for a clear message
            read_checkpoint(checkpoint_path)
        return super().load_from_checkpoint(checkpoint_path, map_location=map_location, hparams_file=hparams_file,
                                            strict=strict, weights_only=True, **kwargs)

    @classmethod
    def from_trained(cls, trained: TrainedModel) -> "EmotionClassifier":
        """The LightningModule around a model from :func:`~emotion.load_model` (to validate or test it)."""
        module = cls(**trained.hparams)
        module.model = trained.model
        module.meta = trained.meta
        return module

    def set_tta(self, tta: str) -> None:
        """Use test-time augmentation (``none``, ``flip``, ``tencrop``) in val/test steps."""
        self.tta = check_tta(tta)
