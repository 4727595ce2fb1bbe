"""QLoRA (Dettmers et al. 2023, https://arxiv.org/abs/2305.14314): LoRA trained on a frozen base loaded in 4-bit NF4.

`safepeft train --method lora --load-in-4bit` loads the base with ``load_4bit`` instead of ``load_model``:
transformers' bitsandbytes integration quantizes every linear layer but the output head to NF4 with double
quantization on the GPU, computing in bf16 (``--dtype float16``/``float32`` choose those instead), and
``peft.prepare_model_for_kbit_training`` freezes it, keeps the other weights in fp32 and turns on (non-reentrant)
gradient checkpointing. The LoRA method and the trainer are the same as without the flag, so the adapter directory,
checkpoints and ``--resume`` are unchanged; ``TrainSpec.load_in_4bit`` is part of the run key and the record.

Deviation from the paper's code: AdamW as for every method, not the paged optimizer (the trainer's checkpoints store
AdamW's state; paging only matters for memory spikes on long sequences).

bitsandbytes' 4-bit kernels need a CUDA GPU: on any other device this refuses before anything is loaded. It is not
verified here (no GPU): tests check the refusals and the arguments passed to transformers, with the load faked.
"""

from __future__ import annotations

from typing import Any

from safepeft.errors import ConfigError, missing_dependency

BNB_MIN_VERSION = "0.46.1"
"""The oldest bitsandbytes transformers' 4-bit loader accepts."""


def check_4bit(device: str) -> int:
    """The CUDA device index to load on; a one-line error when there is no GPU or no bitsandbytes."""
    if device in ("cpu", "mps") or not (device == "auto" or device.startswith("cuda")):
        raise ConfigError(f"--load-in-4bit needs a CUDA GPU (bitsandbytes' 4-bit kernels), but --device is {device}.",
                          "Run it on a machine with a GPU, or drop --load-in-4bit to train in full precision.")
    if not _cuda_available():
        raise ConfigError("--load-in-4bit needs a CUDA GPU (bitsandbytes' 4-bit kernels), but this torch sees none.",
                          "Run it on a machine with a GPU, or drop --load-in-4bit to train in full precision.")
    _require_bitsandbytes()
    import torch

    index = torch.device(device).index if device.startswith("cuda") else None
    return index or 0


def quantization_config(dtype: str = "auto") -> Any:
    """transformers' ``BitsAndBytesConfig``: NF4, double quantization, computing in ``dtype`` (auto: bf16)."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if dtype in ("auto", "bfloat16") else getattr(torch, dtype)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def load_kwargs(dtype: str, device_index: int, trust_remote_code: bool) -> dict[str, Any]:
    """The keyword arguments of ``AutoModelForCausalLM.from_pretrained`` for the 4-bit base."""
    config = quantization_config(dtype)
    return {"quantization_config": config, "device_map": {"": device_index}, "dtype": config.bnb_4bit_compute_dtype,
            "trust_remote_code": trust_remote_code, "use_safetensors": True}


def load_4bit(spec: str, *, dtype: str = "auto", device: str = "auto", chat_template: Any = None,
              trust_remote_code: bool = False) -> Any:
    """``spec`` (embedded, .gguf, HF directory or hub id) as a ``LoadedModel`` whose base is 4-bit and prepared for
    k-bit training; the fingerprint is the one ``load_model`` gives the same spec."""
    index = check_4bit(device)  # before anything is read
    from peft import prepare_model_for_kbit_training
    from transformers import AutoTokenizer

    from safepeft.models import fingerprint as fp
    from safepeft.models.loader import LoadedModel, _prepare_tokenizer, converted_safetensors_dir
    from safepeft.models.quantized import read_manifest
    from safepeft.models.safety import check_model_finite, require_safetensors
    from safepeft.models.spec import resolve

    source = resolve(spec)
    location, fingerprint = source.location, None
    if source.kind == "gguf":
        converted, fingerprint = converted_safetensors_dir(source)
        location = str(converted)
    elif source.kind == "dir":
        if read_manifest(location) is not None:
            raise ConfigError(f"{spec} is already quantized by `safepeft quantize`; --load-in-4bit quantizes a "
                              "full-precision base itself.", "Pass the original model to --model.")
        require_safetensors(location, "model directory")
        fingerprint = fp.directory_fingerprint(location)
    model = _from_pretrained(location, load_kwargs(dtype, index, trust_remote_code))
    if fingerprint is None:  # a hub id: the same fingerprint load_model gives it
        fingerprint = fp.hub_fingerprint(location, getattr(model.config, "_commit_hash", None))
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
    _prepare_tokenizer(tokenizer, source, chat_template, True)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})
    check_model_finite(model, f"model {spec!r}")
    return LoadedModel(model, tokenizer, source, fingerprint)


def _from_pretrained(location: str, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(location, **kwargs)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _require_bitsandbytes() -> None:
    try:
        import bitsandbytes
    except ImportError as exc:
        raise missing_dependency("bitsandbytes", "--load-in-4bit (QLoRA)", "'safepeft[qlora]'") from exc
    from packaging.version import Version

    version = str(getattr(bitsandbytes, "__version__", "0"))
    if Version(version) < Version(BNB_MIN_VERSION):
        raise ConfigError(f"--load-in-4bit needs bitsandbytes >= {BNB_MIN_VERSION}; {version} is installed.",
                          f"Upgrade it: pip install -U 'bitsandbytes>={BNB_MIN_VERSION}'")
