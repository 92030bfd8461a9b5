"""What ganforge has measured of each reproduced document, rendered from the results store.

One :class:`Document` per seed document (and the DCGAN paper): its measurement function reads
the records of the benchmarks that reproduce it and returns a :class:`Shown` — a headline (the
one number the document's reproduction stands on), details and a status — every number with
its protocol, date and standing (:func:`render_records.basis`). :func:`summary` makes the table
of ``REPRODUCTIONS.md`` and of the Reproductions page; :func:`details` each document's section.

What the documents themselves reported is not here: those are the documents' numbers, not
ganforge's, and the pages quote them in ``<!-- cited: DOCUMENT -->`` regions by hand.
Judgements ("met", "holds") are computed from the records with the targets the benchmarks
define, so a new record changes the words with the numbers.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from render_records import Evidence, basis, listed, machine, mean_sd, num, seeds, span

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@dataclass
class Shown:
    """What ganforge has shown of one document: markdown, each number with its basis."""

    headline: str
    status: str
    details: list[str] = field(default_factory=list)


@dataclass
class Document:
    """A reproduced document: its block key (``reproduction:<key>``), the ``reproduces`` value
    of its presets (what the page's cited region names; every such value has a document here,
    a test checks), its title and presets as the tables show them, and its measurements."""

    key: str
    cites: str
    title: str
    presets: str
    measure: Callable[[Evidence], Shown]


def _kmnist_targets() -> tuple[float, float, float]:
    """The targets of seed 000's fix, as ``benchmarks/kmnist_report.py`` checks them."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import kmnist_report  # noqa: E402  (benchmarks/kmnist_report.py)

    return kmnist_report.TARGET_MEAN, kmnist_report.TARGET_CLASS, kmnist_report.TARGET_FID


def _kmnist_protocol(records) -> str:
    s = records[0].protocol.get("scoring", {})
    return listed(f"{records[0].protocol['minutes']:g} CPU min", seeds(records),
                  f"{s.get('n_samples', 0):,} samples scored by `{s.get('evaluator')}`")


def seed_000(ev: Evidence) -> Shown:
    mean_target, class_target, fid_target = _kmnist_targets()
    floor = ev.find("kmnist", "real KMNIST test characters (floor, ceiling)")[-1]
    ceiling, fid_floor = floor.values["ceiling"], floor.values["fid"]
    own = ev.find("kmnist", "acgan-kmnist:seed000")[-1]
    levers = [ev.find("kmnist", f"acgan-kmnist:{n}")[-1]
              for n in ("pretrain", "real-only", "five-classes")]
    tuned = ev.find("kmnist", "acgan-kmnist-tuned:tuned", origin="measured")
    five = ev.find("kmnist", "acgan-kmnist-tuned:five-tuned")[-1]
    tried = [r for r in ev.find("kmnist", origin="measured")
             if r.name.startswith("acgan-kmnist-tuned:") and not any(
                 o.startswith("data.classes=") for o in r.protocol.get("overrides", []))]
    screen = ev.find("kmnist", source="kmnist_gpu_screen.md", origin="transcribed")

    acc = [r.values["acc"] for r in tuned]
    fid = [r.values["fid"] for r in tuned]
    headline = (f"`acgan-kmnist-tuned`: label accuracy {mean_sd(acc, 3)} "
                f"({statistics.fmean(acc) / ceiling:.3f} of the evaluator's ceiling "
                f"{ceiling:.3f}), worst class {min(r.values['worst'] for r in tuned):.3f}, FID "
                f"{mean_sd(fid, 1)} ({statistics.fmean(fid) / fid_floor:.1f}× the real floor) "
                + basis(ev, tuned, _kmnist_protocol(tuned)))
    v = own.values
    quarters = sorted(k.split("/")[1] for k in v if k.endswith("/ratio"))
    first, last = quarters[0], quarters[-1]
    drawn = sum(a is not None and a > 0.5 for a in v["per_class"])
    replay = (f"; the `{own.protocol['replayed/0/name']}` diagnostic fires at step "
              f"{v['replayed/0/step']} when the run's statistics are replayed"
              if "replayed/0/step" in v else "")
    details = [
        f"Seed 000's own settings (`acgan-kmnist`): label accuracy {v['acc']:.3f} "
        f"({v['acc'] / ceiling:.2f} of the ceiling), {drawn} of {len(v['per_class'])} classes "
        f"drawn right more than half the time; D's class loss on real characters "
        f"{v[f'class_loss/{first}/ratio']:.1f}× its class loss on fakes over steps "
        f"{'–'.join(map(str, v[f'class_loss/{first}/steps']))}, "
        f"{v[f'class_loss/{last}/ratio']:.1f}× over the last quarter{replay} "
        + basis(ev, [own], _kmnist_protocol([own])),
        "One change to seed 000's settings each: pre-training the class head "
        f"{levers[0].values['acc']:.3f}, the class loss on real images only "
        f"{levers[1].values['acc']:.3f}, five classes {levers[2].values['acc']:.3f} "
        + basis(ev, levers, _kmnist_protocol(levers)),
        f"`acgan-kmnist-tuned` on five classes: label accuracy {five.values['acc']:.3f} "
        + basis(ev, [five], _kmnist_protocol([five])),
        "Settings screened on a GPU at the CPU runs' step count: FID "
        f"{span([r.values['fid_ratio_to_floor'] for r in screen], 0, '×')} the floor "
        + basis(ev, screen, f"{screen[0].protocol.get('steps', 0):,} steps on "
                            f"{machine(screen)}"),
    ]
    bar = class_target * ceiling
    misses = [(r.protocol["seed"], k, a) for r in tuned
              for k, a in enumerate(r.values["per_class"]) if a is not None and a < bar]
    missed_seeds = sorted({s for s, _, _ in misses})
    per_class = (f"missed by {len(misses)} {'class' if len(misses) == 1 else 'classes'} in "
                 f"{len(missed_seeds)} of the {len(tuned)} seeds ("
                 + ", ".join(f"class {k} of seed {s} at {a:.3f}" for s, k, a in misses) + ")"
                 if misses else "met by every class of every seed")
    ratios = [f / fid_floor for f in fid]
    lowest = min(r.values["fid"] for r in tried) / fid_floor
    fixed = statistics.fmean(acc) >= mean_target * ceiling
    status = (f"seed 000's failure reproduced (label accuracy {v['acc']:.2f} with its settings) "
              f"and {'fixed' if fixed else 'not yet fixed'}: mean label accuracy "
              f"≥ {mean_target:g} of the ceiling {'met' if fixed else 'missed'}; every class "
              f"≥ {class_target:.2f} of the ceiling ({bar:.3f}) {per_class}; FID "
              f"≤ {fid_target:g}× the floor "
              f"{'met' if statistics.fmean(ratios) <= fid_target else 'missed'} "
              f"({span(ratios, 1, '×')} over the seeds, {lowest:.1f}× the lowest of any setting "
              f"tried on a CPU) " + basis(ev, tried, "the runs above")
              + "; Kuzushiji-49 is not available offline")
    return Shown(headline, status, details)


def _current_quality(ev: Evidence, preset: str) -> str:
    row = ev.quality(preset)
    if row is None:
        return f"`{preset}` has no current quality record"
    acc = f", label accuracy {row['acc']} (worst class {row['worst']})" if row["acc"] else ""
    return f"`{preset}`: FID ÷ floor {row['fid_x_floor']}{acc} {row['basis']}"


def _sweep(ev: Evidence, name: str, what: str) -> str:
    r = ev.find("sweep", name)[-1]
    v, p = r.values, r.protocol
    return (f"{what}: FID {v['fid']:.2f} ({v['fid'] / v['fid_floor']:.1f}× the floor), label "
            f"accuracy {v['acc']:.3f} (worst class {v['worst']:.3f}), recall {v['recall']:.2f} "
            + basis(ev, [r], "`benchmarks/sweep.py`: " + listed(
                f"{p['minutes']:g} min", f"{p['threads']} threads", seeds([r]),
                f"{p['scoring']['n_samples']:,} samples")))


def seed_001(ev: Evidence) -> Shown:
    return Shown(
        _current_quality(ev, "cgan-mnist"),
        "the tuned preset measured; the MSE-loss original (`cgan-seed001-mnist`) not yet "
        "measured",
        [_sweep(ev, "cgan-mnist:proj-drop02", "The sweep run of its settings (D reads the label "
                                              "by projection at dropout 0.2)"),
         _sweep(ev, "cgan-mnist:ema-b64", "Its form before that retuning (seed 001's label "
                                          "joined to the image at dropout 0.4, an EMA of G)")])


def _speedup(ev: Evidence, name: str, data: str = "") -> tuple[str, list]:
    """The ratio (or the span of ratios) of a preset's images/s to its typical loop's, side by
    side in one process, over the runs whose data description holds ``data``."""
    rs = [r for r in ev.find("speed", name) if data in r.protocol.get("data", "")]
    p = rs[-1].protocol
    runs = (f"{len(rs)} runs" if len(rs) > 1 else
            f"{p['windows']} windows of {p['window_s']:g} s")
    return (span([r.values["ratio"] for r in rs], 2, "×"),
            [rs, f"`benchmarks/speed.py`: side by side, batch {p['batch']}, {p['threads']} "
                 f"threads, {runs}, {machine(rs)}"])


def seed_002(ev: Evidence) -> Shown:
    ratio, (rs, protocol) = _speedup(ev, "dcgan-seed002-mnist vs typical loop (seed 002)")
    return Shown(
        f"`dcgan-seed002-mnist` trains {ratio} the images/s of the typical loop of the same "
        "nets " + basis(ev, rs, protocol),
        "the reproduction's speed measured; its quality not yet measured",
        ["The tuned " + _current_quality(ev, "dcgan-mnist")])


def _parzen(ev: Evidence, name: str, source: str = "parzen_mnist.json") -> tuple[str, list]:
    rs = ev.find("parzen", name, source=source)
    p = rs[0].protocol
    return (mean_sd([r.values["value"] for r in rs], 1) if len(rs) > 1
            else num(rs[0].values["value"], 1),
            [rs, "`benchmarks/parzen_mnist.py`: " + listed(
                f"{p['n_samples']:,} samples", f"{p['n_test']:,} unseen MNIST training digits "
                f"scored", seeds(rs))])


def seed_003(ev: Evidence) -> Shown:
    paper, (p_rs, p_protocol) = _parzen(ev, "cgan-paper-mnist")
    gan, (g_rs, g_protocol) = _parzen(ev, "gan-mnist")
    cgan, (c_rs, c_protocol) = _parzen(ev, "cgan-mnist")
    real, (r_rs, r_protocol) = _parzen(ev, "real digits")
    early = ev.find("parzen", "cgan-paper-mnist", source="parzen_mnist_early.json")
    steps = ", ".join(f"{r.values['chosen_step']:,}" for r in early)
    holds = (statistics.fmean(r.values["value"] for r in p_rs)
             < statistics.fmean(r.values["value"] for r in g_rs))
    return Shown(
        f"Parzen-window log-likelihood of the paper's cGAN (`cgan-paper-mnist`): {paper} nats "
        + basis(ev, p_rs, p_protocol),
        f"table redone; the paper's ordering (the cGAN below the GAN) "
        f"{'holds' if holds else 'does not hold'}",
        [f"The unconditional MLP GAN (`gan-mnist`): {gan} nats " + basis(ev, g_rs, g_protocol),
         f"`cgan-mnist` as it was then (before its retuning): {cgan} nats "
         + basis(ev, c_rs, c_protocol),
         f"The training digits themselves as samples: {real} nats "
         + basis(ev, r_rs, r_protocol),
         "The paper's early stopping (a checkpoint every "
         f"{early[0].protocol['early_stop']} steps, chosen on validation digits): the paper's "
         f"cGAN {mean_sd([r.values['value'] for r in early], 1)} nats, chosen at steps {steps} "
         + basis(ev, early, listed("as above", seeds(early)))])


def seed_004(ev: Evidence) -> Shown:
    w = ev.find("faces", "wgan-gp-celeba64")[-1]
    v, p = w.values, w.protocol
    faces = (f"`benchmarks/faces.py`: {p['minutes']:g} CPU min, "
             f"{p['scores/fid5k_celeba-lenet/n_fake']:,} samples against "
             f"{p['scores/fid5k_celeba-lenet/n_real']:,} real faces in `celeba-lenet`'s space, "
             f"{machine([w])}")
    tuned = ev.find("faces", "r3gan-celeba32")[-1]
    curve = {tuned.protocol[f"curve/{i}/minutes"]: tuned.values[f"curve/{i}/fid"]
             for i in range(len([k for k in tuned.values if k.startswith("curve/")]))}
    attrs = ev.find("faces", "r3gan-celeba32-attributes")[-1]
    a = attrs.values
    per = ", ".join(f"{n} {a[f'attr_acc/per_attribute/{n}/balanced_accuracy']:.2f}"
                    for n in ("Smiling", "Male", "Blond_Hair"))
    return Shown(
        f"`wgan-gp-celeba64` after {v['steps']:,} G steps: FID "
        f"{v['scores/fid5k_celeba-lenet/value']:.1f}, "
        f"W-distance from {v['curves/Critic/W-distance/first']:.0f} to "
        f"{v['curves/Critic/W-distance/last']:.0f}, gradient penalty from "
        f"{v['curves/Loss/D/gp/first']:.1f} to {v['curves/Loss/D/gp/last']:.1f} "
        + basis(ev, [w], faces),
        "reproduced at CPU scale; the document's Inception Score not comparable (the Inception "
        "weights need a download; the face evaluator's IS analogue is another quantity)",
        ["The tuned `r3gan-celeba32`: FID " + ", ".join(
            f"{curve[m]:.1f} after {m:g}" for m in sorted(curve) if m in (5.0, 15.0))
         + " minutes " + basis(ev, [tuned], faces.replace(f"{p['minutes']:g} CPU min, ", "")),
         f"With the 40 attributes as the condition (`r3gan-celeba32-attributes`): mean balanced "
         f"attribute accuracy {a['attr_acc/balanced']:.3f} against the real faces' "
         f"{a['attr_acc/real_balanced']:.3f} ({per}) "
         + basis(ev, [attrs], f"{attrs.protocol['minutes']:g} CPU min, {machine([attrs])}")])


def dcgan_paper(ev: Evidence) -> Shown:
    r32, (rs32, p32) = _speedup(ev, "dcgan-cifar10 vs typical loop (DCGAN paper 32 px)",
                                "synthetic")
    r64, (rs64, _) = _speedup(ev, "dcgan-celeba64 vs typical loop (DCGAN paper 64 px)",
                              "synthetic")
    jpeg, (rs_jpeg, p_jpeg) = _speedup(ev, "dcgan-celeba64 vs typical loop (DCGAN paper 64 px)",
                                       "JPEG")
    gpu = [r for r in ev.find("throughput", "dcgan-celeba64", source="throughput_cuda.json")
           if r.protocol.get("variant") == "fp32"]
    kit = next(r for r in gpu if r.protocol.get("kind") == "toolkit")
    bare = next(r for r in gpu if r.protocol.get("kind") == "bare")
    share = kit.values["images_per_s/median"] / bare.values["images_per_s/median"]
    return Shown(
        f"The paper's nets train {r32} (32 px) and {r64} (64 px) the typical loop's images/s on "
        "synthetic stand-in images " + basis(ev, rs32 + rs64, p32),
        "speed measured; quality not yet measured",
        [f"On the real JPEG faces, each decoded per sample by the typical loop: {jpeg} "
         + basis(ev, rs_jpeg, p_jpeg),
         f"On a GPU, {share:.0%} of a bare loop's images/s in fp32 (64 px, batch "
         f"{kit.protocol['batch']}) " + basis(ev, [kit, bare], f"`benchmarks/throughput.py "
                                                           f"--device cuda` on {machine([kit])}")])


DOCUMENTS = [
    Document("seed-000", "seed 000", "Seed 000: ACGAN on Kuzushiji",
             "`acgan-kmnist`, `acgan-kmnist49` (tuned: `acgan-kmnist-tuned`)", seed_000),
    Document("seed-001", "seed 001", "Seed 001: the MLP cGAN of PyTorch-GAN's `cgan.py`",
             "`cgan-seed001-mnist` (tuned: `cgan-mnist`)", seed_001),
    Document("seed-002", "seed 002", "Seed 002: DCGAN on MNIST",
             "`dcgan-seed002-mnist` (tuned: `dcgan-mnist`)", seed_002),
    Document("seed-003", "seed 003", "Seed 003: the cGAN paper (Mirza & Osindero)",
             "`cgan-paper-mnist`", seed_003),
    Document("seed-004", "seed 004", "Seed 004: WGAN-GP on faces", "`wgan-gp-celeba64`",
             seed_004),
    Document("dcgan-paper", "DCGAN paper (Radford et al. 2015)",
             "The DCGAN paper (Radford et al.)",
             "`dcgan-celeba64`, `dcgan-cifar10`, `dcgan-folder64`", dcgan_paper),
]


def summary(ev: Evidence) -> str:
    """One row per document: its presets, the headline measurement and the status."""
    out = ["| document | reproduction preset | what ganforge measured | status |",
           "|---|---|---|---|"]
    for doc in DOCUMENTS:
        shown = doc.measure(ev)
        out.append(f"| {doc.title} | {doc.presets} | {shown.headline} | {shown.status} |")
    return "\n".join(out)


def details(ev: Evidence, doc: Document) -> str:
    """A document's section: the headline, each further measurement, the status."""
    shown = doc.measure(ev)
    return "\n".join([f"**What ganforge measured**: {shown.headline}", "",
                      *[f"- {line}" for line in shown.details], "",
                      f"**Status**: {shown.status}"])
