"""A few SGD steps of one registered model, in the precision and memory format the trainer would
choose on this machine's CPU; run in a subprocess by ``test_crash_canary.py`` so that a crash in
oneDNN fails one case with its exit code instead of killing pytest.

    python tests/helpers/train_steps.py MODEL BATCH [BATCH ...] [--force-channels-last]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from emotion.device import choose_precision
from emotion.models import create_model
from emotion.models.layout import cpu_training_memory_format


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("batch", type=int, nargs="+")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--force-channels-last", action="store_true", help="skip the rule: the unsafe path")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    precision = choose_precision("cpu")[0]
    model = create_model(args.model, channels_last=True).train()  # as EmotionClassifier builds it
    fmt, why = cpu_training_memory_format(model, precision)
    if args.force_channels_last:
        fmt, why = torch.channels_last, "channels-last (forced)"
    model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for batch in args.batch:
        x = torch.randn(batch, 1, args.size, args.size)
        y = torch.randint(0, 7, (batch,))
        for _ in range(args.steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16")):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert torch.isfinite(loss), f"{args.model} batch {batch}: loss {loss}"
    print(f"{args.model} {precision} {why}: batches {args.batch} ok")


if __name__ == "__main__":
    main()
