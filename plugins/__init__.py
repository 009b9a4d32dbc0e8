"""Built-in plugins: one package per model family, registered through the same hooks as
third-party plugins (see ``engine.plugins.DEFAULT_PLUGINS``)."""
