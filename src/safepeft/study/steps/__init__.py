"""Step kinds that call stage libraries: one small module per stage (registered in ``study/kinds.py``)."""
