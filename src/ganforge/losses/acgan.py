"""``acgan``: the auxiliary-classifier GAN (Odena et al. 2017), the model of seed 000.

D has a shared trunk and two heads (``model.d_label=classifier``): a real/fake logit and K class
logits. D minimises the real/fake BCE plus ``class_weight ×`` the class loss on real images and
(with ``loss.class_on_fake``, as in the paper) on fakes; G minimises the non-saturating
adversarial loss plus ``class_weight ×`` the class loss of its fakes under their intended label.
The class loss is cross-entropy for class indices and BCE for attribute vectors (multi-label).

Seed 000 found its ACGAN failing by comparing the class loss and accuracy on real images with
those on fakes: D learned to classify the fakes (an easy, self-consistent task G helps with)
but not real digits. So the statistics report both sides separately:
``Loss/D/class_real``, ``Loss/D/class_fake``, ``Acc/D/class_real``, ``Acc/D/class_fake``, and the
adversarial parts ``Loss/D/adv``, ``Loss/G/adv``, ``Loss/G/class``, ``Acc/G/class``. With
``loss.class_on_fake=false`` the head never trains on fakes, and their side is reported as
``Loss/D/class_fake_heldout`` / ``Acc/D/class_fake_heldout``: the ``class-imbalance`` diagnostic
reads ``class_fake`` only, since a low class loss on fakes the head never saw is G succeeding.

Options seed 000 tried: noisy soft labels for D (``loss.real_label_range``,
``loss.fake_label_range``) and pre-training the class head on real data
(``loss.pretrain_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.losses.base import LOSSES, LossOutput
from ganforge.losses.interface import AnyDiscriminator
from ganforge.losses.standard import NonSaturatingLoss
from ganforge.models.base import DOutput
from ganforge.settings import at_least, setting


def class_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on (N, K) logits for (N,) class indices; BCE for (N, K) attribute vectors.

    The logits go in raw: ``F.cross_entropy`` applies log-softmax itself (a Softmax layer
    before it — the bug of popular ACGAN copies — squashes the gradients).
    """
    if y.dim() == 2:
        return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
    return F.cross_entropy(logits, y)


@torch.no_grad()
def class_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correct predictions: argmax for classes, per-attribute sign for attributes."""
    if y.dim() == 2:
        return ((logits > 0) == (y > 0.5)).float().mean()
    return (logits.argmax(dim=1) == y).float().mean()


@LOSSES.register("acgan")
class ACGANLoss(NonSaturatingLoss):
    """Adversarial BCE + auxiliary class loss for D (real and fake) and for G."""

    uses_class_head = True

    @dataclass
    class Settings(NonSaturatingLoss.Settings):
        class_weight: float = setting(1.0, "weight of the class loss in D's and G's objectives",
                                      check=at_least(0),
                                      message="{key} must be >= 0, e.g. 1")
        class_on_fake: bool = setting(True, "D's class head also learns from fakes (the "
                                      "paper)")
        pretrain_steps: int = setting(0, "D steps on real class labels before the GAN game",
                                      check=at_least(0),
                                      message="{key} must be >= 0 (0 = no pre-training)")

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.pretrain_steps = int(cfg.pretrain_steps)

    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        if not model_cfg.conditional or model_cfg.d_label != "classifier":
            raise ConfigError(
                "loss acgan needs a conditional model whose D has a class head; set "
                "model.conditional=true and model.d_label=classifier (preset acgan-mnist)"
            )

    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        assert y_real is not None and y_fake is not None, "acgan is conditional"
        adv = super().d_formula(out_real, out_fake, y_real, y_fake)  # the BCE game
        cls_real = class_loss(out_real.cls, y_real)
        cls_fake = class_loss(out_fake.cls, y_fake)
        cls_total = cls_real + cls_fake if self.cfg.class_on_fake else cls_real
        loss = adv.loss + self.cfg.class_weight * cls_total
        stats = dict(adv.stats)
        # Fakes the head does not train on are named apart: their low class loss is G's doing,
        # not the head learning from fakes, so the class-imbalance check must not compare them.
        fake = "class_fake" if self.cfg.class_on_fake else "class_fake_heldout"
        stats.update({
            "Loss/D": loss.detach(),
            "Loss/D/adv": adv.loss.detach(),
            "Loss/D/class_real": cls_real.detach(),
            f"Loss/D/{fake}": cls_fake.detach(),
            "Acc/D/class_real": class_accuracy(out_real.cls, y_real),
            f"Acc/D/{fake}": class_accuracy(out_fake.cls, y_fake),
        })
        return LossOutput(loss, stats)

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        assert y_fake is not None, "acgan is conditional"
        adv = self._g_objective(out_fake.adv)
        cls = class_loss(out_fake.cls, y_fake)
        loss = adv + self.cfg.class_weight * cls
        return LossOutput(loss, {
            "Loss/G": loss.detach(),
            "Loss/G/adv": adv.detach(),
            "Loss/G/class": cls.detach(),
            "Acc/G/class": class_accuracy(out_fake.cls, y_fake),
            "Prob/D(G(z))/G-step": torch.sigmoid(out_fake.adv.detach()).mean(),
        })

    def pretrain_loss(self, discriminator: AnyDiscriminator, real: torch.Tensor,
                      y_real: Optional[torch.Tensor]) -> LossOutput:
        """Class loss on real images only: warms the class head up before the game starts."""
        assert y_real is not None, "acgan is conditional"
        out = discriminator(real, y_real)
        loss = class_loss(out.cls, y_real)
        return LossOutput(loss, {"Loss/D/pretrain_class": loss.detach(),
                                 "Acc/D/pretrain_class": class_accuracy(out.cls, y_real)})
