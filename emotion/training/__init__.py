"""What only training uses: the run's steps (run: build, fit, evaluate, record), the LightningModule,
exact resume, EMA, snapshot checkpoints, per-epoch history, cluster runs, sweep callbacks, the W&B logger
and calibration (the config rules are emotion.config.rules). Inference never imports it."""
