"""Built-in task generators shared by stages (pure Python, L0): fine-tuning trains on them, the audit scores them."""
