"""Spec files: TOML -> validated ``RunSpec`` -> components built from the registries.

Everything is checked before any work starts. Errors name the file, the field path
(``model.layers[2].units``), what was given, what was expected, and the closest registered name.

Layout of a spec (every section but ``model`` has defaults)::

    seed = 0
    [data]        type = "<dataset>", dataset keys, plus validation / validation_from /
                  preprocess / pca_components / train_subset (engine keys, see DATA_KEYS)
    [model]       layers = [ { type = "<layer>", <constructor keys> }, ... ]; optional
                  init_map = { "dec/w" = { from = "rbm0/w", transpose = true } } (copy named
                  parameters between differently shaped models);
                  init_from = "x.h5" + init_layers = ["conv0", ...] (transfer learning: copy
                  those layers' weights, by name, from a checkpoint; all layers if omitted)
    [loss]        type = "<loss>", constructor keys
    [optimizer]   type = "<optimizer>", constructor keys
    [trainer]     type = "<trainer>", constructor keys (epochs, batch_size, shuffle, ...)
    [checkpoint]  path = "runs/x.h5", every = 1 (epochs)
    [[callbacks]] type = "<callback>", constructor keys
    [[stages]]    a multi-stage run (greedy layer-wise pre-training, then fine-tuning): each
                  stage has name (optional), layers = ["rbm0", ...] (the contiguous top-level
                  layers it trains, default all), trainer = { type = ... } and optionally its
                  own optimizer = { ... } and loss = { ... } (else the spec's sections), and
                  init_map = { "dec/w" = { from = "rbm0/w", transpose = true } }: parameters
                  copied within the model when the stage starts (unrolling pre-trained layers)

Missing sections take defaults, listed in ``RunSpec.defaulted`` so the CLI can print them:
``[data]`` the embedded digits, ``[optimizer]`` sgd lr 0.1, ``[trainer]`` backprop, and
``[loss]`` softmax cross-entropy, but only for trainers that need a loss.

``type`` is the only reserved key of a component table (and ``name`` for layers); every other
key is a keyword argument of the registered class's ``__init__``, spelt the same way.
"""

import copy
import difflib
import inspect
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import SpecError
from engine.runtime.plugins import registry

SECTIONS = ("seed", "name", "description", "data", "model", "loss", "optimizer", "trainer",
            "checkpoint", "callbacks", "stages")
DATA_KEYS = {"validation", "validation_from", "preprocess", "pca_components", "train_subset"}
CHECKPOINT_KEYS = {"path": str, "every": int}
MODEL_KEYS = {"layers", "input_shape", "dtype", "init_from", "init_layers", "init_map"}
DTYPES = ("float32", "float64")
STAGE_KEYS = ("name", "layers", "trainer", "optimizer", "loss", "init_map")
DEFAULT_LOSS = {"type": "softmax_cross_entropy"}
DEFAULTS = {
    "seed": 0,
    "data": {"type": "digits"},
    "optimizer": {"type": "sgd", "lr": 0.1},
    "trainer": {"type": "backprop"},
    "checkpoint": {},
    "callbacks": [],
}


@dataclass
class RunSpec:
    """A validated spec: plain dicts (after overrides), plus where it came from."""

    raw: dict
    source: str = "<spec>"
    text: str = ""
    overrides: list = field(default_factory=list)
    defaulted: list = field(default_factory=list)  # "[data] type = \"digits\"", ...

    @property
    def seed(self):
        return int(self.raw["seed"])

    def section(self, name):
        return self.raw[name]

    def to_json(self):
        return json.dumps(self.raw, sort_keys=True)


# -- loading ------------------------------------------------------------------------------------
def load_spec(path, overrides=()):
    """Read, override and validate a spec file; raise SpecError on any problem."""
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("spec file not found.", source=source) from None
    except OSError as exc:
        raise SpecError(f"cannot read the spec file: {exc.strerror}.", source=source) from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as Windows editors write, is fine
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                        "cannot be decoded. A spec is a TOML text file saved as UTF-8; is this a "
                        "binary file, or text in another encoding?", source=source) from None
    return parse_spec(text, source=source, overrides=overrides)


def parse_spec(text, *, source="<spec>", overrides=()):
    text = text.removeprefix("\ufeff")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"not valid TOML: {exc}.", source=source) from None
    except RecursionError:
        raise SpecError("not a usable TOML file: its arrays or tables are nested too deeply to "
                        "read (a spec needs a few levels at most).", source=source) from None
    return spec_from_dict(raw, source=source, text=text, overrides=overrides)


def spec_from_dict(raw, *, source="<spec>", text="", overrides=()):
    raw = copy.deepcopy(raw)
    for item in overrides:
        apply_override(raw, item, source)
    given = set(raw)
    raw = _with_defaults(raw, source)
    spec = RunSpec(raw=raw, source=source, text=text, overrides=list(overrides))
    validate(spec)
    spec.defaulted = [f"[{key}] {_table_text(DEFAULTS[key])}" for key in ("data", "optimizer", "trainer")
                      if key not in given and not (key != "data" and "stages" in given)]
    if any(stage["loss_defaulted"] for stage in stage_tables(raw)):
        spec.defaulted.append(f"[loss] {_table_text(DEFAULT_LOSS)}")
    return spec


def _table_text(table):
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items())


def stage_tables(raw):
    """Each stage's resolved tables: name, layers (None = all), trainer, optimizer, loss, prefix.

    A spec without ``[[stages]]`` is one stage made of its ``[trainer]``, ``[optimizer]`` and
    ``[loss]``; a stage's missing optimizer or loss comes from those sections, and a trainer
    that needs a loss but gets none anywhere gets softmax cross-entropy.
    """
    stages = raw.get("stages") or [{"trainer": raw["trainer"]}]
    implicit = "stages" not in raw
    out = []
    for i, table in enumerate(stages):
        trainer = table.get("trainer")
        loss = table.get("loss", raw.get("loss"))
        defaulted = loss is None and isinstance(trainer, dict) and _needs_loss(trainer)
        if defaulted:
            loss = dict(DEFAULT_LOSS)
        prefix = "" if implicit else f"stages[{i}]."
        out.append({"name": None if implicit else table.get("name", f"stage{i + 1}"),
                    "layers": table.get("layers"), "trainer": trainer,
                    "optimizer": table.get("optimizer", raw["optimizer"]), "loss": loss,
                    "init_map": table.get("init_map"), "loss_defaulted": defaulted,
                    "prefix": prefix, "trainer_path": f"{prefix}trainer",
                    "optimizer_path": f"{prefix}optimizer" if "optimizer" in table else "optimizer",
                    "loss_path": f"{prefix}loss" if "loss" in table else "loss"})
    return out


def _needs_loss(trainer_table):
    reg = registry("trainers")
    name = trainer_table.get("type")
    cls = reg.get(name) if isinstance(name, str) and name in reg else None
    return True if cls is None else bool(getattr(cls, "needs_loss", True))


def _with_defaults(raw, source):
    for key in raw:
        if key not in SECTIONS:
            close = difflib.get_close_matches(key, SECTIONS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SpecError(f"unknown top-level key '{key}'.{hint} Accepted: {', '.join(SECTIONS)}.",
                            source=source, path=key)
    if "model" not in raw:
        raise SpecError("missing the [model] section (a list of layers).", source=source, path="model")
    out = {}
    for key, default in DEFAULTS.items():
        value = raw.get(key, copy.deepcopy(default))
        if isinstance(value, dict) and isinstance(default, dict) and "type" in default:
            value.setdefault("type", default["type"])  # a section may omit type; never its keys
        out[key] = value
    for key in ("name", "description", "loss", "stages"):
        if key in raw:
            out[key] = raw[key]
    out["model"] = raw["model"]
    return out


# -- overrides ------------------------------------------------------------------------------------
def parse_value(text):
    """A TOML value (``0.01``, ``true``, ``[1, 2]``, ``"relu"``) or, failing that, a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _split_path(dotted):
    parts = []
    for piece in dotted.split("."):
        while "[" in piece:
            head, _, rest = piece.partition("[")
            index, _, piece = rest.partition("]")
            if head:
                parts.append(head)
            parts.append(int(index))
        if piece:
            parts.append(int(piece) if piece.isdigit() else piece)
    return parts


def apply_override(raw, item, source="<spec>"):
    """Apply ``section.key=value`` (``model.layers[0].units=64`` works too) to ``raw``."""
    if "=" not in item:
        raise SpecError(f"override '{item}' is not of the form key.path=value.", source=source)
    dotted, _, value = item.partition("=")
    dotted = dotted.strip()
    try:
        parts = _split_path(dotted)
    except ValueError:
        raise SpecError(f"override path '{dotted}' is malformed.", source=source) from None
    target = raw
    for i, part in enumerate(parts[:-1]):
        try:
            target = target[part]
        except (KeyError, IndexError, TypeError):
            if isinstance(part, str) and isinstance(target, dict):
                target = target.setdefault(part, {})
            else:
                where = ".".join(str(p) for p in parts[: i + 1])
                raise SpecError(f"override '{item}': there is no '{where}' in the spec.",
                                source=source) from None
    last = parts[-1]
    try:
        target[last] = parse_value(value.strip())
    except (IndexError, TypeError):
        raise SpecError(f"override '{item}': cannot set '{dotted}'.", source=source) from None


# -- validation -----------------------------------------------------------------------------------
def _type_name(annotation):
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, type):
        return {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
                "list": "a list", "dict": "a table"}.get(annotation.__name__, annotation.__name__)
    args = typing.get_args(annotation)
    if args:
        names = [_type_name(a) for a in args if a is not type(None)]
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            return " or ".join(names)
        if typing.get_origin(annotation) is typing.Literal:
            return " or ".join(repr(a) for a in args)
    return str(annotation)


def type_ok(value, annotation):
    """Does a TOML value fit a constructor annotation (int for float is fine; bool is not int)?"""
    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def check_kwargs(cls, table, *, path, source, reserved=("type",)):
    """Keys of ``table`` against ``cls.__init__``'s signature: unknown, missing, wrong type."""
    sig = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = {}
    params = {n: p for n, p in sig.parameters.items()
              if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    kwargs = {k: v for k, v in table.items() if k not in reserved}
    for key, value in kwargs.items():
        if key not in params:
            if open_ended:
                continue
            known = [*params, *(r for r in reserved if r != "type")]
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            accepted = ", ".join(known) or "none"
            raise SpecError(f"unknown key '{key}' for {cls.name}.{hint} Accepted: {accepted}.",
                            source=source, path=f"{path}.{key}")
        annotation = hints.get(key, params[key].annotation)
        if not type_ok(value, annotation):
            raise SpecError(
                f"{key} = {value!r} has the wrong type: expected {_type_name(annotation)}.",
                source=source, path=f"{path}.{key}")
    for name, p in params.items():
        if p.default is inspect.Parameter.empty and name not in kwargs:
            raise SpecError(f"missing required key '{name}' for {cls.name}.",
                            source=source, path=f"{path}.{name}")
    return kwargs


def construct(kind, table, *, path, source="<spec>", reserved=("type",)):
    """Look up ``table['type']`` in the ``kind`` registry and instantiate it with its keys."""
    if not isinstance(table, dict):
        raise SpecError(f"expected a table with a 'type' key, got {table!r}.", source=source, path=path)
    if "type" not in table:
        raise SpecError(f"missing 'type': which registered {kind[:-1]} to use.",
                        source=source, path=f"{path}.type")
    cls = registry(kind).get(table["type"], path=f"{path}.type", source=source)
    kwargs = check_kwargs(cls, table, path=path, source=source, reserved=reserved)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{exc}", source=source, path=path) from None


LAYER_KEYS = ("type", "name", "trainable", "lr_mult")  # handled here, never passed to a layer


def _layer_keys(layer, table, *, path, source):
    """Apply the engine's own layer keys: ``name``, ``trainable`` and ``lr_mult``."""
    if "name" in table:
        if not isinstance(table["name"], str) or not table["name"].replace("_", "").isalnum():
            raise SpecError(f"name = {table['name']!r}: use letters, digits and underscores.",
                            source=source, path=f"{path}.name")
        layer.label = table["name"]
    if "trainable" in table:
        if not isinstance(table["trainable"], bool):
            raise SpecError(f"trainable = {table['trainable']!r}: expected true or false.",
                            source=source, path=f"{path}.trainable")
        layer.trainable = table["trainable"]
    if "lr_mult" in table:
        mult = table["lr_mult"]
        if isinstance(mult, bool) or not isinstance(mult, (int, float)) or not mult > 0:
            raise SpecError(f"lr_mult = {mult!r}: expected a positive number (the layer's "
                            "learning-rate multiplier; use trainable = false to freeze it).",
                            source=source, path=f"{path}.lr_mult")
        layer.lr_mult = float(mult)


def build_layers(tables, *, path="model.layers", source="<spec>"):
    """Layer instances for a list of layer tables (also used by composite layers)."""
    if not isinstance(tables, list) or not tables:
        raise SpecError("expected a non-empty list of layer tables.", source=source, path=path)
    layers = []
    for i, table in enumerate(tables):
        layer = construct("layers", table, path=f"{path}[{i}]", source=source,
                          reserved=LAYER_KEYS)
        _layer_keys(layer, table, path=f"{path}[{i}]", source=source)
        layers.append(layer)
    labels = [layer.label for layer in layers if layer.label]
    dupes = {n for n in labels if labels.count(n) > 1}
    if dupes:
        raise SpecError(f"layer names must be unique; repeated: {', '.join(sorted(dupes))}.",
                        source=source, path=path)
    return layers


def validate(spec):
    """Check every section against the registries without loading data or allocating."""
    raw, source = spec.raw, spec.source
    if not isinstance(raw["seed"], int) or isinstance(raw["seed"], bool):
        raise SpecError(f"seed = {raw['seed']!r}: expected an integer.", source=source, path="seed")
    model = raw["model"]
    if not isinstance(model, dict) or "layers" not in model:
        raise SpecError("expected [model] with a 'layers' list.", source=source, path="model")
    extra = set(model) - MODEL_KEYS
    if extra:
        raise SpecError(f"unknown key '{sorted(extra)[0]}'. Accepted: {', '.join(sorted(MODEL_KEYS))}.",
                        source=source, path=f"model.{sorted(extra)[0]}")
    layers = build_layers(model["layers"], source=source)
    if "init_from" in model and not isinstance(model["init_from"], str):
        raise SpecError("expected the path of a checkpoint (a string).", source=source,
                        path="model.init_from")
    if "init_map" in model:
        if "init_from" not in model:
            raise SpecError("init_map needs init_from (the checkpoint to copy from).",
                            source=source, path="model.init_map")
        _check_init_map(model["init_map"], source=source, path="model.init_map")
    if "init_layers" in model:
        names = [layer.label or f"{layer.name}{i}" for i, layer in enumerate(layers)]
        chosen = model["init_layers"]
        if "init_from" not in model:
            raise SpecError("init_layers needs init_from (the checkpoint to copy them from).",
                            source=source, path="model.init_layers")
        if not isinstance(chosen, list) or not all(isinstance(n, str) for n in chosen):
            raise SpecError("expected a list of layer names.", source=source, path="model.init_layers")
        for name in chosen:
            if name not in names:
                raise SpecError(f"no layer named '{name}'; layers: {', '.join(names)}.",
                                source=source, path="model.init_layers")
    if "dtype" in model and model["dtype"] not in DTYPES:
        raise SpecError(f"dtype = {model['dtype']!r}: expected one of {', '.join(DTYPES)}.",
                        source=source, path="model.dtype")
    _validate_stages(raw, layers, source)
    data = raw["data"]
    dataset_table = {k: v for k, v in data.items() if k not in DATA_KEYS}
    construct("datasets", dataset_table, path="data", source=source)
    ckpt = raw["checkpoint"]
    if not isinstance(ckpt, dict):
        raise SpecError("expected a table.", source=source, path="checkpoint")
    for key, value in ckpt.items():
        if key not in CHECKPOINT_KEYS:
            raise SpecError(f"unknown key '{key}'. Accepted: path, every.", source=source,
                            path=f"checkpoint.{key}")
        if not type_ok(value, CHECKPOINT_KEYS[key]):
            raise SpecError(f"{key} = {value!r}: expected {_type_name(CHECKPOINT_KEYS[key])}.",
                            source=source, path=f"checkpoint.{key}")
    if "every" in ckpt and ckpt["every"] < 1:
        raise SpecError(f"every = {ckpt['every']}: expected a positive number of epochs between "
                        "checkpoints.", source=source, path="checkpoint.every")
    if not isinstance(raw["callbacks"], list):
        raise SpecError("expected an array of tables: [[callbacks]].", source=source, path="callbacks")
    for i, table in enumerate(raw["callbacks"]):
        construct("callbacks", table, path=f"callbacks[{i}]", source=source)
    return spec


def _check_init_map(mapping, *, source, path):
    ok = isinstance(mapping, dict) and all(
        isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("from"), str)
                               and set(v) <= {"from", "transpose"}
                               and isinstance(v.get("transpose", False), bool))
        for v in mapping.values())
    if not ok:
        raise SpecError('expected a table of "layer/key" = "layer/key" or { from = '
                        '"layer/key", transpose = true }.', source=source, path=path)


def init_map_entries(mapping):
    """(destination, source, transpose) for each entry of an ``init_map`` table."""
    return [(dest, src, False) if isinstance(src, str)
            else (dest, src["from"], bool(src.get("transpose", False)))
            for dest, src in mapping.items()]


def stage_range(names, layers, *, source, path):
    """(start, stop) of the contiguous top-level layers ``names`` (None: all of them)."""
    labels = [layer.label or f"{layer.name}{i}" for i, layer in enumerate(layers)]
    if names is None:
        return 0, len(labels)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SpecError("expected a non-empty list of top-level layer names.", source=source,
                        path=path)
    for name in names:
        if name not in labels:
            raise SpecError(f"no top-level layer named '{name}'; layers: {', '.join(labels)}.",
                            source=source, path=path)
    index = sorted(labels.index(n) for n in names)
    if index != list(range(index[0], index[-1] + 1)) or len(set(names)) != len(names):
        raise SpecError(f"a stage trains a contiguous run of layers, each named once; got "
                        f"{', '.join(names)} (layers in order: {', '.join(labels)}).",
                        source=source, path=path)
    return index[0], index[-1] + 1


def _validate_stages(raw, layers, source):
    if "stages" in raw:
        if not isinstance(raw["stages"], list) or not raw["stages"] or not all(
                isinstance(t, dict) for t in raw["stages"]):
            raise SpecError("expected an array of tables: [[stages]], each with a trainer.",
                            source=source, path="stages")
        for i, table in enumerate(raw["stages"]):
            for key in table:
                if key not in STAGE_KEYS:
                    close = difflib.get_close_matches(key, STAGE_KEYS, n=1)
                    hint = f" Did you mean '{close[0]}'?" if close else ""
                    raise SpecError(f"unknown stage key '{key}'.{hint} Accepted: "
                                    f"{', '.join(STAGE_KEYS)}.", source=source,
                                    path=f"stages[{i}].{key}")
            if "trainer" not in table:
                raise SpecError("a stage needs a trainer table, e.g. trainer = { type = "
                                "\"backprop\", epochs = 5 }.", source=source,
                                path=f"stages[{i}].trainer")
            if "name" in table and not isinstance(table["name"], str):
                raise SpecError("expected a string.", source=source, path=f"stages[{i}].name")
            if "init_map" in table:
                _check_init_map(table["init_map"], source=source, path=f"stages[{i}].init_map")
    for stage in stage_tables(raw):
        prefix = stage["prefix"]
        stage_range(stage["layers"], layers, source=source, path=f"{prefix}layers")
        trainer = construct("trainers", stage["trainer"], path=stage["trainer_path"], source=source)
        construct("optimizers", stage["optimizer"], path=stage["optimizer_path"], source=source)
        if stage["loss"] is not None:
            construct("losses", stage["loss"], path=stage["loss_path"], source=source)
        elif trainer.needs_loss:
            raise SpecError("this trainer needs a [loss].", source=source, path=f"{prefix}loss")
