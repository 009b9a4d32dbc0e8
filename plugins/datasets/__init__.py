"""Datasets (placeholder until the datasets plugin lands)."""
