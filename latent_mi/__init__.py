"""Torch-free pieces shared by every stage: :mod:`latent_mi.contract` (cross-stage names)."""
