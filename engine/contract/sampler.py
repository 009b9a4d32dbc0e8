"""The sampler contract: what ``redes sample CHECKPOINT`` draws from a trained network.

A model family registers sampler classes through ``register_samplers``. ``redes sample`` (built
in, ``engine.commands.sample``) rebuilds the checkpoint's run, asks every registered sampler
whether it ``applies`` to that run, and hands the run to the first that does (a
clear error lists the samplers and why none applied). Each sampler declares the extra
command-line options it reads in ``options``; ``redes sample`` parses them for the chosen
sampler only, so two families' samplers can take different options under one command.

* ``name`` — the sampler's registered name (``redes plugins`` lists it).
* ``options`` — ``{name: (type, default, help)}``: ``--name VALUE`` on the command line (``_``
  spelt ``-``), converted with ``type`` (int, float, str or pathlib.Path); a default of None
  makes the option optional. ``--seed``, ``--device`` and ``--data-dir`` are common to every
  sampler and not declared here; a sampler that writes a file declares ``out`` (its default),
  which the command's own ``--out`` sets.
* ``applies(run) -> bool`` — whether this sampler can draw from the run's network
  (``run.model``; ``run.dataset`` is there too): an RBM sampler looks for an ``rbm`` layer, a
  text sampler for token ids in, per-step scores out and a dataset that decodes them.
* ``sample(run, seed=..., **options)`` — draw and deliver: write a file and say where on stderr,
  or print the samples on stdout. Raise ``engine.errors.RedesError`` (one paragraph, exit
  status 2) for bad option values.
"""

from typing import ClassVar


class Sampler:
    name: ClassVar[str] = ""
    options: ClassVar[dict] = {}
    description: ClassVar[str] = ""  # one line for errors and help: what it draws

    def applies(self, run):
        raise NotImplementedError

    def sample(self, run, *, seed=0, **options):
        raise NotImplementedError
