"""Task utility from lm-evaluation-harness: its tasks, scored through its API on the audited Generator (optional
`lmeval` extra; nothing here imports lm_eval until a suite runs)."""
