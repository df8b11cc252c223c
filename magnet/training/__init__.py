"""Training: the LightningModule, losses, EMA and callbacks (plain Lightning, no Hydra)."""
