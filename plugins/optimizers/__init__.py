"""Optimizers (placeholder until the optimizers plugin lands)."""
