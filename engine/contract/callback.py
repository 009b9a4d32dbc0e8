"""Callbacks: objects implementing lifecycle hooks (see ``engine.contract.hookspecs``).

Subclass ``Callback``, set ``name``, mark the hooks you implement with ``@engine.hookimpl``
and register the class through ``register_callbacks``; a spec adds it with
``[[callbacks]] type = "<name>"`` plus its constructor keys. ``state()``/``load_state()`` carry
what a resumed run needs (best score so far, patience counter).
"""

from typing import ClassVar


class Callback:
    name: ClassVar[str] = ""

    def state(self):
        return {}

    def load_state(self, state):
        pass
