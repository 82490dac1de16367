"""deepeval's model interface (``DeepEvalBaseLLM``) over an evalkit :class:`~evalkit.llm.LLMClient`.

Apart from :mod:`evalkit.judges.deepeval_metrics` because it imports deepeval at import time:
it is imported only when a deepeval judge runs, after :func:`import_deepeval` has set
deepeval's environment (no telemetry, no ``.env``). The class holds no state; each verdict
gets its own instance, which records the calls of that one metric.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from evalkit.judges._deepeval_env import import_deepeval
from evalkit.judges.rubric import prompt_sha256
from evalkit.llm.client import ChatResult, LLMClient

import_deepeval()

from deepeval.models import DeepEvalBaseLLM  # noqa: E402  (after deepeval's environment is set)

__all__ = ["EvalkitDeepEvalModel"]


class EvalkitDeepEvalModel(DeepEvalBaseLLM):  # type: ignore[misc,valid-type]
    """deepeval's model interface over an evalkit LLMClient."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.results: list[ChatResult] = []
        self.prompts: list[str] = []  # a hash of each prompt deepeval sent
        super().__init__(model=client.model)

    def load_model(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def get_model_name(self, *args: Any, **kwargs: Any) -> str:
        return self.client.model

    def supports_structured_outputs(self) -> bool:
        return True

    async def a_generate(self, prompt: Any, schema: Any = None, **kwargs: Any) -> Any:
        messages = [{"role": "user", "content": prompt if isinstance(prompt, str) else str(prompt)}]
        self.prompts.append(prompt_sha256(messages))
        # Pinned like every evalkit judge: temperature 0 and the run's seed.
        seed = self.client.settings.seed
        if schema is not None:
            value, result = await self.client.structured(
                messages, schema, name=schema.__name__, temperature=0.0, seed=seed
            )
            self.results.append(result)
            return value
        result = await self.client.chat(messages, temperature=0.0, seed=seed)
        self.results.append(result)
        return result.content or ""

    def generate(self, prompt: Any, schema: Any = None, **kwargs: Any) -> Any:
        # deepeval's sync path (async_mode=False); evalkit itself always measures async.
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = asyncio.run(self.a_generate(prompt, schema=schema))
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc

        t = threading.Thread(target=work)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

