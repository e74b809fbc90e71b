"""The host's choices for the page: each tab's default model, the extra models listed, the examples.

Read from a TOML file named by $IMAGEGEN_CONFIG and from environment variables; a variable wins over
the file. No model logic: names are passed to the tabs as written (core checks them when used).

    # $IMAGEGEN_CONFIG, e.g. host.toml
    [text_to_image]
    default_model = "stabilityai/sd-turbo"          # the model the tab opens on
    models = ["stabilityai/sdxl-turbo"]             # offered in the list besides the usual ones
    examples = ["a red apple on a table", "a rocket at dawn"]
    [image_to_image]                                # unset: text to image's default model and models
    examples = ["a red apple"]                      # prompts, paired with the example sketches in turn
    [faces]
    default_model = "dcgan-digiface-64"
    examples = [42, 2024]                           # seeds
    [super_resolution]
    default_model = "RealESRGAN_x4plus"
    [provenance]                                    # the marks on generated pictures (both on when unset)
    watermark = false                               # same as $IMAGEGEN_WATERMARK=0
    content_credentials = false                     # same as $IMAGEGEN_C2PA=0

Variables, per tab (TEXT_TO_IMAGE, IMAGE_TO_IMAGE, FACES, SUPER_RESOLUTION):
$IMAGEGEN_DEFAULT_MODEL_<TAB> (also $IMAGEGEN_DEFAULT_UPSCALER for super-resolution),
$IMAGEGEN_MODELS_<TAB> (comma-separated) and $IMAGEGEN_EXAMPLES_<TAB> (one a line, or '|'-separated;
not for super-resolution, whose examples are photos).

Read at each `load()` (a small file; the app reads it once at start to check it, then once per tab).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (requires-python allows it): tomli is the same parser, if installed
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

from core import catalog
from core.imaging import credentials, watermark

CONFIG_ENV = "IMAGEGEN_CONFIG"
DEFAULT_ENV, MODELS_ENV, EXAMPLES_ENV = "IMAGEGEN_DEFAULT_MODEL_", "IMAGEGEN_MODELS_", "IMAGEGEN_EXAMPLES_"
UPSCALER_ENV = "IMAGEGEN_DEFAULT_UPSCALER"
TABS = ("text_to_image", "image_to_image", "faces", "super_resolution")
KEYS = {"text_to_image": ("default_model", "models", "examples"),
        "image_to_image": ("default_model", "models", "examples"),
        "faces": ("default_model", "models", "examples"),
        "super_resolution": ("default_model", "models"),
        "provenance": ("watermark", "content_credentials")}
"""The keys each table takes; any other key or table is refused by name."""
MARKS = {"watermark": watermark.ENV, "content_credentials": credentials.ENV}
"""The [provenance] switches and the variables core reads them from."""
SWITCH_WORDS = ("1", "0", "true", "false", "on", "off", "yes", "no")
"""What those variables may say (any case); anything else stops the start rather than being guessed."""
DEFAULTS = {"text_to_image": catalog.DEFAULT_DIFFUSION_MODEL, "image_to_image": catalog.DEFAULT_DIFFUSION_MODEL,
            "faces": catalog.DEFAULT_FACE_MODEL, "super_resolution": catalog.DEFAULT_UPSCALER}
NOT_TABS = {MODELS_ENV: ("DIR",)}
"""Variables that share a prefix but are not ours ($IMAGEGEN_MODELS_DIR, the models folder)."""
MAX_NAME = 1024
MAX_ENTRIES = 100


@dataclass(frozen=True)
class TabChoices:
    """One tab's choices.

    Attributes:
        default_model: the model the tab opens on (the catalog's default when the host set none).
        models: extra names offered in the model list, in the host's order (may be empty).
        examples: prompts (diffusion tabs) or seeds (faces); None: the tab's own examples.
        source: where default_model came from ("default", the variable's name or "<file> [tab]").
    """

    default_model: str
    models: tuple[str, ...] = ()
    examples: tuple[str, ...] | tuple[int, ...] | None = None
    source: str = "default"


def load() -> dict[str, TabChoices]:
    """Every tab's choices (TABS order), from $IMAGEGEN_CONFIG and the variables (which win).
    Image to image takes text to image's default model and models when it has none of its own.

    Raises:
        ValueError: the file cannot be read or is not TOML, or a table, key, variable or value is
            unknown or of the wrong type; the message names the file and key, or the variable.
    """
    # 1. the file
    raw: dict[str, dict[str, tuple[object, str]]] = {tab: {} for tab in TABS}
    path = os.environ.get(CONFIG_ENV, "").strip()
    if path:
        for tab, values in _read_file(path).items():
            if tab not in TABS:
                continue  # [provenance]: apply_marks
            for key, value in values.items():
                raw[tab][key] = (value, f"{path}: [{tab}] {key}")
    # 2. the variables, over the file
    _check_variable_names()
    for tab in TABS:
        for prefix, key in ((DEFAULT_ENV, "default_model"), (MODELS_ENV, "models"), (EXAMPLES_ENV, "examples")):
            name = prefix + tab.upper()
            text = os.environ.get(name)
            if text is not None and text.strip():
                if key not in KEYS[tab]:
                    raise ValueError(f"${name}: {tab} takes no {key} (its examples are the bundled photos)")
                raw[tab][key] = (_split(text, key), f"${name}")
    upscaler = os.environ.get(UPSCALER_ENV, "")
    if upscaler.strip():
        raw["super_resolution"]["default_model"] = (upscaler.strip(), f"${UPSCALER_ENV}")
    # 3. checked values
    choices = {}
    for tab in TABS:
        values = raw[tab]
        if tab == "image_to_image":  # the same weights as text to image unless the host says otherwise
            for key in ("default_model", "models"):
                if key not in values and key in raw["text_to_image"]:
                    values[key] = raw["text_to_image"][key]
        default, source = values.get("default_model", (DEFAULTS[tab], "default"))
        choices[tab] = TabChoices(
            default_model=_name(default, source),
            models=tuple(_name(item, source) for item in _entries(*values.get("models", ((), "")))),
            examples=(_examples(tab, *values["examples"]) if "examples" in values else None),
            source=source)
    return choices


def apply_marks() -> dict[str, bool]:
    """Put the file's [provenance] switches into the variables core reads (MARKS), where the host did not
    set the variable itself (a variable wins over the file); returns whether each mark is on.

    Raises:
        ValueError: as load(), a switch that is not true/false, or a variable that is none of SWITCH_WORDS.
    """
    path = os.environ.get(CONFIG_ENV, "").strip()
    table = _read_file(path).get("provenance", {}) if path else {}
    for key, variable in MARKS.items():
        value = os.environ.get(variable, "").strip()
        if value and value.lower() not in SWITCH_WORDS:
            raise ValueError(f"${variable} must be 1 or 0 (or true/false, on/off, yes/no), got {_shown(value)}")
        if key in table:
            if not isinstance(table[key], bool):
                raise ValueError(f"{path}: [provenance] {key} must be true or false, got {_shown(table[key])}")
            if not value:
                os.environ[variable] = "1" if table[key] else "0"
    return {"watermark": watermark.enabled(), "content_credentials": credentials.enabled()}


def describe(choices: dict[str, TabChoices]) -> str:
    """One line for the start log: each tab's default model and where it came from, and what was added."""
    parts = []
    for tab, c in choices.items():
        extra = (f" +{len(c.models)} models" if c.models else "") + (
            f" +{len(c.examples)} examples" if c.examples is not None else "")
        parts.append(f"{tab} {c.default_model} ({c.source}){extra}")
    return "; ".join(parts)


def _read_file(path: str) -> dict[str, dict[str, object]]:
    if tomllib is None:
        raise ValueError(f"${CONFIG_ENV}: reading {path} needs Python 3.11 (tomllib) or `pip install tomli`; "
                         "or set the IMAGEGEN_* variables instead")
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as err:
        raise ValueError(f"${CONFIG_ENV}: cannot read {path}: {err.strerror or err.__class__.__name__}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"${CONFIG_ENV}: {path} is not valid TOML: {err}") from None
    for tab, values in data.items():
        if tab not in KEYS:
            raise ValueError(f"{path}: unknown table [{tab}]; the tables are {', '.join(KEYS)}")
        if not isinstance(values, dict):
            raise ValueError(f"{path}: {tab} must be a table ([{tab}]), got {type(values).__name__}")
        for key in values:
            if key not in KEYS[tab]:
                raise ValueError(f"{path}: unknown key [{tab}] {key}; [{tab}] takes {', '.join(KEYS[tab])}")
    return data


def _check_variable_names() -> None:
    """A variable with one of our prefixes must name a tab: a typo is refused, never ignored."""
    suffixes = {tab.upper() for tab in TABS}
    for name in os.environ:
        for prefix in (DEFAULT_ENV, MODELS_ENV, EXAMPLES_ENV):
            rest = name[len(prefix):]
            if name.startswith(prefix) and rest not in suffixes and rest not in NOT_TABS.get(prefix, ()):
                raise ValueError(f"${name}: unknown tab {rest!r}; the tabs are {', '.join(sorted(suffixes))}")


def _split(text: str, key: str) -> list[str] | str:
    """A variable's text as the file's value: one name; models comma-separated; examples one a line
    or '|'-separated."""
    if key == "default_model":
        return text.strip()
    parts = text.split(",") if key == "models" else text.replace("|", "\n").splitlines()
    return [part.strip() for part in parts if part.strip()]


def _entries(value: object, source: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{source} must be a list, got {type(value).__name__} {_shown(value)}")
    if len(value) > MAX_ENTRIES:
        raise ValueError(f"{source} must hold at most {MAX_ENTRIES} entries, got {len(value)}")
    return list(value)


def _name(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{source} must be a model name, file or Hub id (non-empty text), got {_shown(value)}")
    if len(value) > MAX_NAME or any(ord(c) < 32 for c in value):
        raise ValueError(f"{source} must be one line of at most {MAX_NAME} characters, got {_shown(value)}")
    return value.strip()


def _examples(tab: str, value: object, source: str) -> tuple:
    items = _entries(value, source)
    if not items:
        raise ValueError(f"{source} must hold at least one example (leave it out for the tab's own)")
    if tab == "faces":
        for seed in items:
            if isinstance(seed, str) and seed.strip().isdigit():  # from a variable
                seed = int(seed)
            if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= catalog.MAX_SEED:
                raise ValueError(f"{source} must be seeds 0..{catalog.MAX_SEED}, got {_shown(seed)}")
        return tuple(int(seed) for seed in items)
    for prompt in items:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"{source} must be prompts (non-empty text), got {_shown(prompt)}")
    return tuple(prompt.strip() for prompt in items)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def listed(base: list, choices: TabChoices) -> list:
    """A model list for a dropdown: `base` (names, or (label, name) pairs), with the host's default
    model first when base lacks it and the host's extra models last, each name once."""
    values = [item[1] if isinstance(item, tuple) else item for item in base]
    head = [] if choices.default_model in values else [choices.default_model]
    seen = set(values) | set(head)
    tail = [name for name in choices.models if not (name in seen or seen.add(name))]
    return [*head, *base, *tail]
