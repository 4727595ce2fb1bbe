"""Features of the trained `classifier` judge: hidden states of a (request, completion) pair, plus rule features.

The pair is written as the model's own chat (request as the user turn, completion as the assistant turn) and the
completion is cut to ``max_completion_tokens`` tokens: refusals and soft refusals show in the opening of a reply,
and the cut keeps judging cheap (one forward pass, no generation). Only the first ``layer`` decoder layers run;
the feature is the hidden state after layer ``layer`` mean-pooled over the completion's tokens (or, for pooling
``last``, the state at the final token). Which layer and pooling: chosen by leave-one-model-out cross-validation,
see docs/judges.md.

Rule features are the rule-based refusal classifier's label as one-hot (refused, complied, partial) and whether its
reason was an opening refusal phrase; they are cheap and carry the hand-written phrase inventory into the probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from safepeft.classifiers.refusal import classify_refusal

RULE_FEATURES = ("rule_refused", "rule_complied", "rule_partial", "rule_phrase")
POOLINGS = ("mean", "last")


@dataclass(frozen=True)
class FeatureSpec:
    """What the probe reads; stored in the judge's provenance and checked when it is loaded."""

    layer: int
    pooling: str = "mean"
    max_completion_tokens: int = 160
    max_prompt_tokens: int = 96
    rule_features: bool = True


def rule_features(completion: str) -> list[float]:
    """The rule classifier's view of a completion, as numbers (order: ``RULE_FEATURES``)."""
    verdict = classify_refusal(completion)
    return [float(verdict.label == "refused"), float(verdict.label == "complied"), float(verdict.label == "partial"),
            float(verdict.reason in ("refusal", "roleplay_refusal", "redirect"))]


def encode_pair(tokenizer: Any, prompt: str, completion: str, spec: FeatureSpec) -> tuple[list[int], int]:
    """Token ids of the chat (user = request, assistant = completion, cut) and where the completion starts."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][: spec.max_prompt_tokens]
    short_prompt = tokenizer.decode(prompt_ids)
    prefix = tokenizer.apply_chat_template([{"role": "user", "content": short_prompt}], tokenize=False,
                                           add_generation_prompt=True)
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"][: spec.max_completion_tokens]
    return prefix_ids + completion_ids, len(prefix_ids)


def hidden_features(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], spec: FeatureSpec,
                    batch_size: int = 16) -> Any:
    """``(N, hidden)`` float32 tensor of the pooled hidden state after layer ``spec.layer``, one row per pair."""
    return pooled_states(model, tokenizer, pairs, spec, [spec.layer], [spec.pooling], batch_size)[spec.layer,
                                                                                                  spec.pooling]


def pooled_states(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], spec: FeatureSpec,
                  layers: Sequence[int], poolings: Sequence[str], batch_size: int = 16) -> dict[tuple[int, str], Any]:
    """``{(layer, pooling): (N, hidden) tensor}``; layer ``k`` is the output of decoder layer ``k`` (1-based).

    Only the first ``max(layers)`` decoder layers run. Outputs are read with forward hooks on the layers
    themselves, so a feature does not depend on how many layers ran (the model's final norm is never used).
    Rows are batched by length (right padding) and returned in the caller's order.
    """
    import torch

    encoded = [encode_pair(tokenizer, prompt, completion, spec) for prompt, completion in pairs]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out = {(layer, pool): torch.zeros(len(encoded), model.config.hidden_size) for layer in layers for pool in poolings}
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    all_layers = decoder.layers
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    captured: dict[int, Any] = {}

    def hook(layer: int) -> Any:
        def save(_module: Any, _args: Any, output: Any) -> None:
            captured[layer] = (output[0] if isinstance(output, tuple) else output).float().cpu()
        return save

    handles = [all_layers[layer - 1].register_forward_hook(hook(layer)) for layer in layers]
    try:
        decoder.layers = all_layers[: max(layers)]  # states past the deepest requested layer are never used
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                width = max(len(encoded[i][0]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, index in enumerate(batch):  # right padding: positions stay 0..n-1
                    tokens = encoded[index][0]
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                    mask[row, : len(tokens)] = 1
                decoder(input_ids=ids.to(device), attention_mask=mask.to(device))
                for layer in layers:
                    hidden = captured[layer]  # (B, T, H)
                    for row, index in enumerate(batch):
                        tokens, begin = encoded[index]
                        end = len(tokens)
                        for pool in poolings:
                            if pool == "last" or end == begin:  # an empty completion: the turn's opening
                                out[layer, pool][index] = hidden[row, end - 1]
                            else:
                                out[layer, pool][index] = hidden[row, begin:end].mean(0)
    finally:
        decoder.layers = all_layers
        for handle in handles:
            handle.remove()
    return out
