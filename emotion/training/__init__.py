"""What only training uses: the run's steps (run: build, fit, evaluate, record), the LightningModule,
exact resume, EMA, snapshot checkpoints, per-epoch history, cluster runs, sweep callbacks, the W&B logger,
the config rules and calibration. Inference never imports it."""
