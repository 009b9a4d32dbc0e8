"""Helpers behind the CLI's commands that are more than a call into ``engine.runtime``:
benchmarks, optimizer comparisons, figures, the progress display and ``redes validate``."""
