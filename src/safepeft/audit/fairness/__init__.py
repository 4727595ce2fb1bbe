"""Fairness audit: BBQ (Parrish et al. 2022) accuracy and bias scores over 9 demographic dimensions."""
