"""Audit: measure safety (hazard categories), over-refusal, fairness (BBQ), jailbreak success and task utility."""
