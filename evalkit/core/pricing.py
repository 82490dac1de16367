"""Model prices (USD per 1M input / output tokens) and the cost of one call.

The built-in table covers common hosted models; anything else costs ``None`` (unknown),
never a guessed number. ``--prices FILE`` (YAML or JSON) adds or overrides entries::

    gpt-4o-mini: {input: 0.15, output: 0.60}
    my-local-llama: {input: 0, output: 0}

A model matches an entry by exact name, else by the longest entry that is a prefix of it
(``gpt-4o-mini-2024-07-18`` uses ``gpt-4o-mini``); a ``provider/`` prefix (LiteLLM style)
is ignored when matching.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.core._yaml import YamlSyntaxError, parse_yaml
from evalkit.core.errors import ConfigError

__all__ = ["Price", "PriceTable", "DEFAULT_PRICES", "load_prices"]


class Price(BaseModel):
    """USD per one million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


# Public list prices at the time of writing; override with --prices when they change.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gpt-4.1": Price(input=2.00, output=8.00),
    "gpt-4.1-mini": Price(input=0.40, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, output=0.40),
    "gpt-5": Price(input=1.25, output=10.00),
    "gpt-5-mini": Price(input=0.25, output=2.00),
    "gpt-5-nano": Price(input=0.05, output=0.40),
    "o3-mini": Price(input=1.10, output=4.40),
    "o4-mini": Price(input=1.10, output=4.40),
    "gpt-3.5-turbo": Price(input=0.50, output=1.50),
}


@dataclass
class PriceTable:
    """Looks up a model's price and computes the cost of a call."""

    prices: dict[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    # model name -> (table size, the key it matched), checked on every hit: each call asks
    _seen: dict[str, tuple[int, str | None]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def price(self, model: str) -> Price | None:
        hit = self._seen.get(model)
        if hit is not None and hit[0] == len(self.prices) and (hit[1] is None or hit[1] in self.prices):
            return None if hit[1] is None else self.prices[hit[1]]
        name = model.split("/", 1)[1] if "/" in model else model
        key = next((c for c in (model, name) if c in self.prices), None)
        if key is None:
            key = max((k for k in self.prices if name.startswith(k)), key=len, default=None)
        if len(self._seen) < 256:
            self._seen[model] = (len(self.prices), key)
        return None if key is None else self.prices[key]

    def cost(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for one call, or ``None`` when the model has no known price."""
        p = self.price(model) if model else None
        if p is None:
            return None
        return (prompt_tokens * p.input + completion_tokens * p.output) / 1_000_000

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PriceTable:
        """Exactly these prices (no defaults): ``{model: {input, output}}`` or
        ``{model: [input, output]}``, US$ per 1M tokens."""
        out: dict[str, Price] = {}
        for model, p in data.items():
            try:
                if isinstance(p, list | tuple):
                    p = {"input": p[0], "output": p[1]}
                out[str(model)] = Price.model_validate(p)
            except (IndexError, ValidationError):
                raise ConfigError(
                    "a price is {input: US$ per 1M prompt tokens, output: US$ per 1M completion tokens}",
                    field=f"prices.{model}",
                ) from None
        return cls(out)

    def merged(self, overrides: Mapping[str, Price]) -> PriceTable:
        return PriceTable({**self.prices, **overrides})


def load_prices(path: str | Path | None) -> PriceTable:
    """The default table, overridden by the YAML/JSON file at ``path`` when given."""
    table = PriceTable()
    if path is None:
        return table
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read price file: {exc.strerror or exc}", file=str(p), field="--prices") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})", file=str(p),
                          field="--prices") from None
    try:
        # parse_yaml: safe, and refuses alias bombs and duplicate keys like scenario files.
        data = json.loads(text) if p.suffix == ".json" else parse_yaml(text)
    except YamlSyntaxError as exc:
        raise ConfigError(exc.problem, file=str(p), line=exc.line) from None
    except ValueError as exc:
        raise ConfigError(f"not valid JSON: {str(exc).splitlines()[0]}", file=str(p)) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of model name to {input, output}", file=str(p))
    parsed: dict[str, Price] = {}
    for model, entry in data.items():
        try:
            parsed[str(model)] = Price.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise ConfigError(err["msg"], file=str(p), field=f"{model}.{loc}" if loc else str(model)) from None
    return table.merged(parsed)
