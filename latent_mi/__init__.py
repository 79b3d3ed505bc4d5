"""Torch-free pieces shared by every stage: :mod:`latent_mi.contract` (cross-stage names),
:mod:`latent_mi.outputs` (safe outputs, locks), :mod:`latent_mi.store_check` (store integrity)."""
