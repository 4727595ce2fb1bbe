"""SaLoRA: safety-alignment preserved LoRA (Li et al., ICLR 2025; see method.py and docs/salora.md).

Modules: ``calibration`` (Gram matrices at response tokens via hooks), ``subspace`` (U_s / U_t from Grams, C applied
without materialising it), ``init`` (task-specific A₀/B₀), ``build`` (calibration → per-module factors),
``layer`` (the SaLoRA linear), ``export`` (native + portable rank-2r PEFT LoRA), ``data`` (calibration rows) and
``method`` (``--method salora``).
"""
