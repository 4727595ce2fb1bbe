"""safepeft: fine-tune → audit → repair → quantize/guard → re-audit, with one report."""

__version__ = "0.1.0"
