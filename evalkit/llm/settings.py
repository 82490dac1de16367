"""Which model each role talks to, resolved from flags and environment variables.

Three roles use models and are configured separately, because teams commonly pair a cheap
user simulator with a strong judge: ``simulator``, ``judge`` and ``agent``. For each role,
the first of these that is set wins:

=========  =========================================  ===========================
setting    role-specific                              shared
=========  =========================================  ===========================
model      ``--<role>-model``, ``EVALKIT_<ROLE>_MODEL``  ``--model``, ``EVALKIT_MODEL``
base URL   ``--<role>-base-url``, ``EVALKIT_<ROLE>_BASE_URL``  ``--base-url``, ``EVALKIT_BASE_URL``, ``OPENAI_BASE_URL``
API key    ``EVALKIT_<ROLE>_API_KEY``                  ``OPENAI_API_KEY``
=========  =========================================  ===========================

Client options come from ``EVALKIT_<ROLE>_<OPTION>`` or ``EVALKIT_<OPTION>`` for
``TIMEOUT``, ``MAX_RETRIES``, ``MAX_CONCURRENCY``, ``RPM``, ``TPM``, ``TEMPERATURE`` and
``SEED`` (e.g. ``EVALKIT_JUDGE_RPM=500``). A role with no model is ``None``: everything that needs it reports ``skipped`` (judges) or
refuses to start (``--simulator llm``). API keys are :class:`pydantic.SecretStr`: ``repr``,
``str`` and ``model_dump`` never show them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from evalkit.core.errors import ConfigError

__all__ = ["ROLES", "Role", "ModelSettings", "ModelRoles"]

Role = Literal["simulator", "judge", "agent"]
ROLES: tuple[Role, ...] = ("simulator", "judge", "agent")

# Client options also settable per role or for all roles: EVALKIT_[ROLE_]RPM=..., etc.
_ENV_OPTIONS = ("timeout", "max_retries", "max_concurrency", "rpm", "tpm", "temperature", "seed")

# Local servers (vLLM, Ollama, llama.cpp) accept any key, but the openai client insists on one.
_PLACEHOLDER_KEY = "not-needed"


class ModelSettings(BaseModel):
    """How to reach one model and how politely to use it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = Field(default=None, repr=False)
    timeout: float = Field(default=60.0, gt=0, description="seconds per HTTP attempt")
    max_retries: int = Field(default=4, ge=0, le=20, description="retries after the first attempt")
    backoff_s: float = Field(default=0.5, ge=0, description="first backoff; doubles per retry, with jitter")
    max_backoff_s: float = Field(default=30.0, ge=0)
    max_concurrency: int = Field(default=8, ge=1, le=1024)
    rpm: int | None = Field(default=None, ge=1, description="requests per minute, client side")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute, client side")
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None

    def key(self) -> str:
        """The API key to send (a placeholder for keyless local servers)."""
        return self.api_key.get_secret_value() if self.api_key is not None else _PLACEHOLDER_KEY

    def describe(self) -> str:
        """``model @ base_url`` for manifests and logs (never the key, nor a password in the URL)."""
        from evalkit.core.masking import mask_url

        return f"{self.model} @ {mask_url(self.base_url)}" if self.base_url else self.model

    def __str__(self) -> str:
        return self.describe()

    @classmethod
    def resolve(
        cls,
        role: Role | None = None,
        *,
        model: str | None = None,
        base_url: str | None = None,
        role_model: str | None = None,
        role_base_url: str | None = None,
        env: Mapping[str, str] | None = None,
        **options: object,
    ) -> ModelSettings | None:
        """Settings for ``role`` from flags (arguments) and ``env``; ``None`` when no model is set."""
        env = os.environ if env is None else env
        up = role.upper() if role else None

        def pick(*values: str | None) -> str | None:
            for v in values:
                if v is not None and str(v).strip():
                    return str(v).strip()
            return None

        name = pick(role_model, env.get(f"EVALKIT_{up}_MODEL") if up else None, model, env.get("EVALKIT_MODEL"))
        if name is None:
            return None
        url = pick(
            role_base_url,
            env.get(f"EVALKIT_{up}_BASE_URL") if up else None,
            base_url,
            env.get("EVALKIT_BASE_URL"),
            env.get("OPENAI_BASE_URL"),
        )
        key = pick(env.get(f"EVALKIT_{up}_API_KEY") if up else None, env.get("OPENAI_API_KEY"))
        if url is not None and not url.startswith(("http://", "https://")):
            field = f"--{role}-base-url" if role and role_base_url else "--base-url"
            raise ConfigError(f"'{url}' is not an http(s) URL", field=field)
        opts = {k: v for k, v in options.items() if v is not None}
        for option in _ENV_OPTIONS:
            if option not in opts:
                var = option.upper()
                raw = pick(env.get(f"EVALKIT_{up}_{var}") if up else None, env.get(f"EVALKIT_{var}"))
                if raw is not None:
                    opts[option] = raw
        try:
            return cls(model=name, base_url=url, api_key=SecretStr(key) if key else None, **opts)  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{err['msg']} (got {err.get('input')!r})", field=f"{role or 'model'}.{loc}") from None


class ModelRoles(BaseModel):
    """The settings of each role; a role is ``None`` when it has no model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    simulator: ModelSettings | None = None
    judge: ModelSettings | None = None
    agent: ModelSettings | None = None

    @classmethod
    def resolve(
        cls,
        *,
        model: str | None = None,
        base_url: str | None = None,
        simulator_model: str | None = None,
        judge_model: str | None = None,
        agent_model: str | None = None,
        simulator_base_url: str | None = None,
        judge_base_url: str | None = None,
        agent_base_url: str | None = None,
        env: Mapping[str, str] | None = None,
        **options: object,
    ) -> ModelRoles:
        """Resolve every role from flags and environment (see the module docstring)."""
        per_role: dict[Role, tuple[str | None, str | None]] = {
            "simulator": (simulator_model, simulator_base_url),
            "judge": (judge_model, judge_base_url),
            "agent": (agent_model, agent_base_url),
        }
        return cls(
            **{
                role: ModelSettings.resolve(
                    role, model=model, base_url=base_url, role_model=m, role_base_url=u, env=env, **options
                )
                for role, (m, u) in per_role.items()
            }
        )

    @property
    def any(self) -> bool:
        return any(getattr(self, r) is not None for r in ROLES)

    def describe(self) -> dict[str, str]:
        """``{role: "model @ url"}`` for the run manifest (configured roles only, no keys)."""
        return {r: s.describe() for r in ROLES if (s := getattr(self, r)) is not None}
