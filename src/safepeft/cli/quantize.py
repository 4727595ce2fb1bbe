"""`safepeft quantize`: quantize a model (+ adapter, merged first) into a directory `--model DIR` loads."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from safepeft.cli import options


def quantize(
    model: str = options.MODEL,
    adapter: Path | None = options.ADAPTER,
    scheme: str = typer.Option(..., "--scheme", help="int8-dynamic, int8, int4, gguf-q8_0, gguf-q4_k_m, gguf-q2_k, "
                               "bnb-int8, bnb-nf4 (see `safepeft list quantizers`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (loads with --model DIR)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
    device: str = options.DEVICE,
    chat_template: Path | None = options.CHAT_TEMPLATE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    json_line: bool = typer.Option(False, "--json", help="End with one JSON line (out, scheme, bits, size and memory "
                                   "ratios) for scripts."),
) -> None:
    """Quantize a model; prints the size and memory reduction and writes OUT/quantization.json."""
    from transformers.utils import logging as hf_logging

    from safepeft.quantize import QUANTIZERS
    from safepeft.quantize.run import quantize_model

    QUANTIZERS.get(scheme)  # an unknown scheme fails before any model is loaded
    hf_logging.disable_progress_bar()
    manifest = quantize_model(model, scheme, out, adapter=adapter, device=device, chat_template=chat_template,
                              trust_remote_code=trust_remote_code, overwrite=overwrite)
    size, memory = manifest["size"], manifest["memory"]
    typer.echo(f"{scheme}: {size['reference_fp32_bytes'] / 2**20:.1f} MiB fp32 -> "
               f"{size['quantized_bytes'] / 2**20:.1f} MiB on disk ({size['ratio']}x smaller), weight memory "
               f"{memory['quantized_bytes'] / 2**20:.1f} MiB ({memory['ratio']}x)")
    if json_line:  # only on request: a person reads the line above
        typer.echo(json.dumps({"out": str(out), "scheme": scheme, "bits": manifest["bits"],
                               "size_ratio": size["ratio"], "memory_ratio": memory["ratio"]}))


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize)
