"""The training step: from a config to G and D updates, one step after another.

* :mod:`.setup`: :func:`~.setup.build` resolves every component of a run (data, sampler, G, D,
  loss object, optimizers, noise, EMA), its batch plan and the loss's phase plan, and refuses
  combinations that make no sense;
* :mod:`.loop`: :class:`~.loop.Trainer`, the loop itself (it never names a GAN variant: it walks
  the loss's phase plan), checkpoints and resume;
* :mod:`.runner`: the phase runner: every update (pre-training D, D, G) through one path that
  owns DDP, autocast, compile, channels_last and loss scaling; its ``LossView`` is the
  ``losses.interface.DiscriminatorView`` the loss objects see;
* :mod:`.progress`: the loop's bookkeeping (budget, progress bar, images/s);
* :mod:`.hooks`: what the loop tells whoever watches the run (:class:`~.hooks.RunHooks`);
* :mod:`.guard`, :mod:`.precision`, :mod:`.optim`, :mod:`.ema`: the non-finite guard, mixed
  precision, optimizers and schedules, the EMA of G.

What it may import: the distributed world (``training.world``), the run layer (checkpoints,
sampling), ``models``, ``losses``, ``data``, ``reporting``'s statistics channel and writers,
``config`` and the foundation. Never the watch room (``training.watch``): grids, in-loop
metrics, diagnostics and reports reach the loop as hooks built by the caller.
"""
