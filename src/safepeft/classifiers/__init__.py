"""Text classifiers shared by audit judges and guardrails (L1: both stages import from here, never each other)."""
