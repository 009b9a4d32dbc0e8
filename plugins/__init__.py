"""Built-in plugins: one package per model family, registered through the same hooks as
third-party plugins (see ``engine.runtime.plugins.DEFAULT_PLUGINS``)."""
