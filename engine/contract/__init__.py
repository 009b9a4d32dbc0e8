"""The plugin contract, readable on its own: every hook (``hookspecs``), the base classes a plugin
subclasses (``layer``, ``loss``, ``optimizer``, ``trainer``, ``callback``, ``dataset``), weight
initialisers (``initializer``) and the target kinds losses consume (``targets``). Nothing here runs
anything; ``engine.runtime`` does."""
