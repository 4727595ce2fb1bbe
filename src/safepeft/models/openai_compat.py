"""OpenAICompatGenerator: the Generator protocol over any OpenAI-compatible HTTP API (OpenAI, vLLM, llama.cpp's
server, TGI, Ollama ...), with the standard library only.

Chat prompts go to ``POST {base_url}/chat/completions``; raw text with ``GenParams.chat=False`` (classifier
formats such as Llama Guard's) goes to ``POST {base_url}/completions``. Requests run a few at a time, time out, and
are retried with exponential backoff on network errors, 429 and 5xx. The API key is read from the named
environment variable for each request and is never stored on the object, logged, or put into an error message.
Log-likelihood scoring is not part of these APIs, so it raises a clear error (use generate-mode scoring instead).
For a LoRA a multi-LoRA engine serves by name, ``model`` is that name and ``adapter_fingerprint`` the declared
adapter's hash (see ``safepeft.models.served``).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from safepeft.errors import ConfigError, ModelLoadError
from safepeft.records.generation import GenParams, LoglikelihoodRequest, Prompt

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatGenerator:
    """Text generation through an OpenAI-compatible endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        concurrency: int = 4,
        adapter_fingerprint: str | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"Invalid base URL {base_url!r}.", "Use e.g. http://127.0.0.1:8000/v1.")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise ConfigError(
                f"The environment variable {api_key_env} (named as the API key variable) is not set.",
                f"Export it first (export {api_key_env}=...), or leave out the key for endpoints without auth.",
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env  # the variable's *name*; the key itself is read per request
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        # A served adapter (``model`` is the name the engine serves it under) cannot be hashed from here: the
        # fingerprint of the directory the user declared stands in, so declaring another adapter re-runs the cache.
        self.adapter_fingerprint = adapter_fingerprint

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "model": f"{self.model}@{self.base_url}", "adapter": self.adapter_fingerprint}

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[str]:
        if len(prompts) <= 1 or self.concurrency == 1:
            return [self._generate_one(p, params) for p in prompts]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._generate_one(p, params), prompts))

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        raise ConfigError(
            "The OpenAI-compatible backend cannot score log-likelihoods (the chat API has no such call).",
            "Score multiple-choice suites by generation instead (--mode generate), or use a local model.",
        )

    # -- one request ----------------------------------------------------------------------------------------
    def _generate_one(self, prompt: Prompt, params: GenParams) -> str:
        common: dict[str, Any] = {"model": self.model, "max_tokens": params.max_new_tokens,
                                  "temperature": params.temperature, "seed": params.seed}
        if params.temperature > 0:
            common["top_p"] = params.top_p
        if params.stop:
            common["stop"] = list(params.stop)[:4]  # the API accepts at most four
        if isinstance(prompt, str) and not params.chat:
            reply = self._post("/completions", {**common, "prompt": prompt})
            text = _choice(reply, "text")
        else:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
            if params.system_prompt is not None and messages[0]["role"] != "system":
                messages.insert(0, {"role": "system", "content": params.system_prompt})
            reply = self._post("/chat/completions", {**common, "messages": messages})
            text = _choice(reply, "message")
        for stop in params.stop:  # servers differ in whether they cut at stop strings
            if stop in text:
                text = text[: text.index(stop)]
        return text

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode("utf-8")
        url = self.base_url + path
        last: str = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=body, method="POST", headers=self._headers())
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):
                    raise ConfigError(
                        f"{url} refused the request (HTTP {exc.code}).",
                        f"Check the API key in ${self.api_key_env}." if self.api_key_env
                        else "Pass --api-key-env NAME with the variable that holds the key.",
                    ) from None
                if exc.code not in _RETRY_STATUS:
                    detail = exc.read().decode("utf-8", "replace")[:200]
                    raise ModelLoadError(f"{url} answered HTTP {exc.code}: {detail}",
                                         "Check the model name and the request parameters.") from None
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except json.JSONDecodeError:
                last = "a reply that is not JSON"
            if attempt < self.max_retries:
                time.sleep(min(self.backoff * 2**attempt, 30.0))
        raise ModelLoadError(
            f"{url} failed after {self.max_retries + 1} attempts ({last}).",
            "Check that the server is running and reachable; completed requests are kept, re-run to resume.",
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers


def _choice(reply: dict[str, Any], kind: str) -> str:
    try:
        choice = reply["choices"][0]
        return (choice["message"].get("content") or "") if kind == "message" else (choice.get("text") or "")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"Unexpected reply from the endpoint: {str(reply)[:200]}",
                             "Is this an OpenAI-compatible API?") from exc
