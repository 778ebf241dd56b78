"""Denoising diffusion on the digits: schedules, samplers, U-Net, guidance and training.

Modules (each names the chapter that derives it): ``schedules`` (``forward-process``,
``noise-schedules``), ``ddpm`` and ``unet`` and ``train`` (``ddpm-digits``), ``ddim``
(``ddim``), ``guidance`` (``guidance``), ``hf`` (``diffusers-comparison``), ``presets`` and
``cache`` (shared by the digits chapters). Import them explicitly; this file imports nothing.
"""
