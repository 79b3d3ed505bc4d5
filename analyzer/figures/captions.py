"""The one registry of figures: name -> what it shows, its estimator, how to read it.

Used by the workflow (which figures exist, which inputs they need, the report caption of
each) and by the README's "Reading the figures" section (``python -m analyzer.figures
--readme`` prints it). Add a figure here and in ``DRAW`` of its module, nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ESTIMATOR = (
    "plug-in histogram MI in nats, each variable binned over its own min-max range per "
    "epoch into B equal-width bins; I(X;T) = H(Bin T) for X uniform over the validation images"
)
GROUPS = (
    "One line or panel per (arch, activation, regularizer) group: each seed thin, the mean "
    "bold, and a 95% Student-t band only with 3 or more seeds (clipped to the quantity's "
    "range); depth ticks name the measurement sites. Colour and marker are the site kind "
    "in every panel (blue circles: VGG sites and ResNet post-add sites; orange squares: "
    "ResNet branch sites, a separate series); line style is the epoch (solid trained, "
    "dashed random)."
)


@dataclass(frozen=True)
class FigureInfo:
    """One figure: ``source`` is 'mi' (drawn from MI Datasets), 'interventions', or 'twelve_bit'
    (MI Datasets of twelve_bit_mlp runs)."""

    name: str
    title: str
    source: str
    shows: str
    paper: str
    read: str
    estimator: str = ESTIMATOR
    requires: str = ""  # '' always drawn; 'hsic': only with HSIC runs; 'transplants'; 'twelve_bit'
    binned: bool = True  # drawn from the B-bin estimates (the caption names B); False: no B
    runs: str = "all"  # which runs it draws: 'all', 'unregularized', 'hsic_pairs' (runs_drawn)


FIGURES: dict[str, FigureInfo] = {
    f.name: f
    for f in (
        FigureInfo(
            "fig1_depth_mi",
            "Fig 1: layer-label and input MI against depth",
            "mi",
            "I(T;Y) (top) and I(X;T) (bottom), mean over each layer's channels, against depth; "
            "trained (best validation-accuracy epoch, solid) vs random (epoch 0, dashed). The "
            "grey band is the label-permutation null (2.5-97.5% over permutations, best "
            "epoch): the plug-in bias, ~(B-1)(K-1)/(2N) nat, that a channel with no label "
            "information shows; only MI above it is information. " + GROUPS,
            "label MI rises with depth in trained VGG-16 and ResNet-18 and stays low and flat "
            "in random networks; input MI falls with depth after training.",
            "the solid top curve rising above the dashed one and above the grey null "
            "band in late layers; input MI "
            "depends on the activation (ReLU vs tanh), so compare groups, not only depths.",
            runs="unregularized",
        ),
        FigureInfo(
            "fig2_layer_mi",
            "Fig 2: layer-layer MI",
            "mi",
            "Heatmap of layer_mi(a, b) minus its null layer_mi_null(a, b): mean MI over fixed "
            "seeded channel pairs of layers a and b less the mean the same pairs would show if "
            "independent, trained (left) vs random (right), mean over seeds. The diagonal (a = b) "
            "pairs different channels of the same layer: within-layer redundancy, not entropy.",
            "in trained VGG-16, MI between distant layers is low and falls with depth "
            "(decorrelated features), except a very large conv1-conv2 value; random networks "
            "show higher MI between many layers.",
            "the off-diagonal mass of the two panels, compared; the colour scale is shared "
            "within a row.",
            runs="unregularized",
        ),
        FigureInfo(
            "fig3_concentration",
            "Fig 3/4: concentration of channel-label MI",
            "mi",
            "Gini, Top-10% share and normalized entropy of p_c = I(T_lc;Y) / sum_c I(T_lc;Y) "
            "against depth, trained vs random. " + GROUPS,
            "training raises Gini and Top-k share, mostly in deep layers, and lowers normalized "
            "entropy modestly: label information concentrates in few channels.",
            "a solid curve above the dashed one in late layers (Gini, Top-10%) is "
            "concentration; on small data (digits) the opposite has been seen: report it as is.",
            runs="unregularized",
        ),
        FigureInfo(
            "fig5_knockouts",
            "Fig 5: knockouts of MI-ranked channels",
            "interventions",
            "Accuracy drop at the last measured layer against the MI mass q of the top-MI set; "
            "random and bottom-MI sets have the same number of channels as the top set. "
            "Columns: zero, energy (zeroed, the rest rescaled to keep each sample's norm), "
            "shuffle (channels permuted across samples), noise-s (Gaussian noise of s channel "
            "standard deviations added). Mean +- sd over seeds and random draws.",
            "top-MI knockouts cost far more accuracy than random or bottom-MI ones, also when "
            "energy is preserved.",
            "the red (top) curve above gray and blue means MI ranking finds the channels the "
            "decision uses; curves that coincide mean it does not.",
            estimator="channels ranked by I(T_lc;Y) at the best epoch (" + ESTIMATOR + ")",
        ),
        FigureInfo(
            "fig6_class_knockouts",
            "Fig 6: class-targeted knockouts",
            "interventions",
            "Drop of class k's accuracy after removing the channels ranked by I(T_lc; 1[Y=k]) "
            "until MI mass q, for every class k; bars are means, error bars sd over seeds and "
            "draws.",
            "removing a class's top-MI channels hurts that class far more than removing as "
            "many random or low-MI channels.",
            "red bars well above gray and blue for most classes.",
            estimator="channels ranked by I(T_lc;1[Y=k]) at the best epoch (" + ESTIMATOR + ")",
        ),
        FigureInfo(
            "transplants",
            "Transplants of MI-ranked channels",
            "interventions",
            "Recipient (next seed) accuracy drop after copying the donor's top-MI (or random, "
            "bottom) out-channel filters and BatchNorm parameters, against donor MI mass q.",
            "every transplant hurts, and random or low-MI transplants hurt about as much: "
            "high-MI channels do not transfer in isolation.",
            "similar curves for the three selections reproduce the paper; a much higher red "
            "curve would mean top channels are especially context dependent.",
            requires="transplants",
        ),
        FigureInfo(
            "cover_and_skip_gain",
            "Redundancy (minimal MI cover) and skip connections",
            "interventions",
            "Left: accuracy drop after removing the minimal MI cover (fewest top-MI channels "
            "reaching q; cover_accuracy) vs a redundant MI-matched set (channels most redundant "
            "with the cover, same MI mass; redundant_accuracy). Right: ResNet accuracy with "
            "every identity path scaled by g (skip_gain_accuracy; g = 1 is the trained net).",
            "redundant sets buffer damage at small q and become harmful at large q; skip "
            "connections modulate how information is combined more than which channels "
            "carry it.",
            "solid (cover) against dashed (redundant) per group; on the right, how fast accuracy "
            "falls as g leaves 1.",
        ),
        FigureInfo(
            "fig7_accuracy_vs_delta_input_mi",
            "Fig 7: accuracy against input-MI change",
            "mi",
            "Best validation accuracy against dI(X;T) = I(X;T) at the best epoch minus at "
            "initialization, mean over the final third of layers; one marker per run, one "
            "colour per group.",
            "points on both sides of zero with no downward trend: accuracy does not need "
            "compression; ReLU tends to expansion, tanh mixes both.",
            "left of the vertical line is compression, right expansion; compare colours "
            "(activations) rather than reading a trend.",
        ),
        FigureInfo(
            "fig8_input_mi_trajectories",
            "Fig 8: I(X;T) trajectories",
            "mi",
            "I(X;T) over epochs for the final third of layers (each seed thin, mean bold, 95% "
            "t-interval band with 3 or more seeds), dotted: "
            "each seed's least-squares line after the plateau epoch of I(T;Y) (first epoch at "
            "95% of its maximum); legend: mean slope in nat/epoch.",
            "post-plateau slopes are near 0: compression after fitting is weak and depends on "
            "the activation and architecture.",
            "a clearly negative dotted slope is post-fitting compression; near-flat lines are "
            "the paper's typical case.",
            runs="unregularized",
        ),
        FigureInfo(
            "info_plane",
            "Information plane",
            "mi",
            "I(X;T) against I(T;Y) over epochs (Shwartz-Ziv & Tishby), one colour per layer "
            "(shallow to deep), thin lines for each seed, bold for the seed mean; a circle "
            "marks epoch 0, a star the last epoch. Every group, HSIC runs included.",
            "the 'fitting then compression' path (right, then left) is not universal: with "
            "ReLU, I(X;T) rarely falls (Saxe et al.).",
            "follow each colour from the circle to the star: a move up is fitting; a later move left would be "
            "compression.",
        ),
        FigureInfo(
            "fig9_hsic",
            "Fig 9: HSIC regularization",
            "mi",
            "Validation accuracy and loss against epoch, cross-entropy (dashed) vs "
            "cross-entropy + HSIC (solid), per (arch, activation): each seed thin, the mean bold, "
            "a 95% t-interval band with 3 or more seeds (clipped to [0, 1] and loss >= 0); the "
            "legend gives the epochs to reach 95% of the final validation accuracy (each seed "
            "with fewer than 3 seeds, else mean [95% t-interval within the epochs run]). The loss "
            "axis is logarithmic, so an early loss spike and the late losses are both readable.",
            "the HSIC regularizer speeds convergence and improves accuracy slightly.",
            "the solid curve reaching the plateau earlier (or higher) reproduces the paper.",
            estimator="training curves (no MI estimate)",
            binned=False,
            runs="hsic_pairs",
            requires="hsic",
        ),
        FigureInfo(
            "twelve_bit_info_plane",
            "Information plane of the 12-bit task (Shwartz-Ziv & Tishby)",
            "twelve_bit",
            "I(X;T) = H(Bin T) against I(T;Y) of each whole hidden layer of the 12-10-7-5-4-3-2 "
            "MLP over a log-spaced epoch grid (colour), mean over seeds, one marker shape per "
            "layer (legend); one panel per "
            "(activation, training noise beta). Dotted: H(Y) and ln 4096.",
            "Shwartz-Ziv & Tishby: with tanh, a fitting phase (I(T;Y) rises) then a long "
            "compression phase (I(X;T) falls) in the deeper layers; Saxe et al. / Goldfeld et al.: "
            "it depends on the activation and the estimator.",
            "follow a layer from dark (early) to bright (late) points: up is fitting, a later "
            "move left is compression; shallow layers stay at ln 4096 (every input its own bin).",
            estimator="whole-layer joint bin pattern, fixed bin size (rule in the MI Dataset's "
            "attrs layer_binning), plug-in, nats",
            binned=False,
            requires="twelve_bit",
        ),
        FigureInfo(
            "twelve_bit_binning_sensitivity",
            "Binning sensitivity of I(X;T) (Goldfeld et al., Fig. 1)",
            "twelve_bit",
            "H(floor(T/b)) of each whole layer over epochs for bin sizes b from 1e-4 to 1e-1, "
            "mean over seeds; dotted: ln 4096.",
            "Goldfeld et al.: for a deterministic net the binned I(X;T) depends on b; small "
            "bins saturate at ln 4096, the 'compression' seen with large bins is clustering.",
            "compare the curves of one panel: only the coarse bins move.",
            estimator="whole-layer joint bin pattern floor(t/b), plug-in, nats",
            binned=False,
            requires="twelve_bit",
        ),
        FigureInfo(
            "twelve_bit_noisy_input_mi",
            "Noisy-network I(X;T) with bounds (Goldfeld et al.)",
            "twelve_bit",
            "I(X; S + N(0, beta^2 I)) per layer over epochs for several betas, Monte Carlo "
            "estimate (line) inside the Kolchinsky-Tracey pairwise-distance bounds (band), "
            "mean over seeds.",
            "Goldfeld et al.: with noise, I(X;T) is finite and falls when same-class inputs "
            "cluster at the scale beta (compression = clustering).",
            "a fall of the line at small beta in deep layers is clustering at that scale.",
            estimator="Gaussian-mixture entropy by Monte Carlo (analyzer/core/noisy_mi.py), nats; "
            "X uniform over the 4,096 patterns",
            binned=False,
            requires="twelve_bit",
        ),
        FigureInfo(
            "twelve_bit_clustering",
            "Clustering by class (Goldfeld et al.)",
            "twelve_bit",
            "mean cosine similarity of the layer's vectors within classes (solid) and between "
            "classes (dashed), and their gap, per layer over epochs, mean over seeds.",
            "Goldfeld et al.: the binned I(X;T) tracks how same-class representations cluster.",
            "compare the gap's rise with the fall of I(X;T) in the information plane.",
            estimator="exact means over all sample pairs (class sums of unit vectors)",
            binned=False,
            requires="twelve_bit",
        ),
    )
}


# What each figure does about the plug-in bias: shows the null, subtracts it, or draws raw MI.
NULLS: dict[str, str] = {
    "fig1_depth_mi": "I(T;Y) raw, with its label-permutation null shown (grey band); "
    "I(X;T) = H(Bin T) is an entropy, for which no permutation null exists: raw",
    "fig2_layer_mi": "null-corrected: layer_mi minus layer_mi_null, the exact mean of the same "
    "channel pairs' plug-in MI over all permutations of one channel's samples (independent "
    "channels at the same bins and N: about 0.2-0.4 nat at B = 20, N = 359); each panel "
    "prints the subtracted range",
    "fig3_concentration": "raw: from the plug-in channel_label_mi, not null-corrected (the MI "
    "Dataset's gini_corrected is the Gini of the null-corrected channel MI)",
    "fig5_knockouts": "no MI drawn: raw plug-in channel MI only ranks the channels",
    "fig6_class_knockouts": "no MI drawn: raw plug-in class-channel MI only ranks the channels",
    "transplants": "no MI drawn: raw plug-in channel MI only ranks the channels",
    "cover_and_skip_gain": "no MI drawn: raw plug-in channel MI only selects the channels",
    "fig7_accuracy_vs_delta_input_mi": "raw: dI(X;T) is a difference of binned entropies "
    "H(Bin T), for which no permutation null exists",
    "fig8_input_mi_trajectories": "raw I(X;T) = H(Bin T), an entropy: no permutation null",
    "info_plane": "raw: I(T;Y) without its null (Fig 1 shows it; label_mi_corrected in the MI "
    "Dataset subtracts it); I(X;T) = H(Bin T) has no permutation null",
    "fig9_hsic": "no MI drawn",
    "twelve_bit_info_plane": "raw whole-layer plug-in estimates, no null subtracted",
    "twelve_bit_binning_sensitivity": "raw whole-layer binned entropies, no null subtracted",
    "twelve_bit_noisy_input_mi": "no null: a Monte Carlo estimate inside analytic bounds",
    "twelve_bit_clustering": "no MI drawn",
}


def names(
    source: str | None = None,
    *,
    hsic: bool = True,
    transplants: bool = True,
    twelve_bit: bool = False,
) -> list:
    """Registered figure names (of one source), dropping those whose runs are absent."""
    have = {"": True, "hsic": hsic, "transplants": transplants, "twelve_bit": twelve_bit}
    return [
        n
        for n, f in FIGURES.items()
        if (source is None or f.source == source) and have.get(f.requires, True)
    ]


LEFT_OUT = {
    "unregularized": "regularized, drawn in Fig 7, Fig 9 and the information plane",
    "hsic_pairs": "of an (arch, activation) without an HSIC run",
}


def runs_drawn(name: str, keys: Sequence[tuple[str, str, str]]) -> int:
    """How many of the runs with these (arch, activation, regularizer) keys figure ``name``
    draws: Figs 1-3 and 8 only unregularized runs, Fig 9 only the (arch, activation) pairs
    that have an HSIC run (all, when none has), the others every run."""
    how = FIGURES[name].runs
    if how == "unregularized":
        return sum(1 for k in keys if k[2] == "none")
    if how == "hsic_pairs":
        pairs = {k[:2] for k in keys if k[2] == "hsic"}
        return sum(1 for k in keys if not pairs or k[:2] in pairs)
    return len(keys)


def caption(
    name: str, bins: int | str, runs: int | Sequence[tuple[str, str, str]] | None = None
) -> str:
    """The report caption (reStructuredText) of one figure: what, estimator, bins, N.

    runs: the run count, or each run's (arch, activation, regularizer): N is then the runs
    the figure draws (:func:`runs_drawn`), and the caption says how many it leaves out."""
    f = FIGURES[name]
    if runs is None:
        n = ""
    elif isinstance(runs, int):
        n = f" N = {runs} runs."
    else:
        drawn, total = runs_drawn(name, runs), len(runs)
        n = f" N = {drawn} runs."
        if drawn < total:
            why = LEFT_OUT.get(f.runs, "not drawn here")
            n = f" N = {drawn} runs ({total - drawn} of the {total} runs are {why})."
    b = f" ({bins} bins)" if f.binned else ""
    return (
        f"**{f.title}**{b}.{n} {f.shows}\n\n"
        f"*Estimator:* {f.estimator}.\n\n"
        f"*Null:* {NULLS[name]}.\n\n"
        f"*Paper:* {f.paper}\n\n"
        f"*How to read it:* {f.read}\n"
    )


README_BEGIN, README_END = "<!-- figures:begin -->", "<!-- figures:end -->"


def readme_section() -> str:
    """The README's "Reading the figures" paragraphs (markdown), one per figure."""
    paragraphs = [
        f"**{f.title}** (`{f.name}`). {f.shows} *Estimator:* {f.estimator}. "
        f"*Null:* {NULLS[f.name]}. "
        f"*The paper:* {f.paper} *Look for:* {f.read}"
        for f in FIGURES.values()
    ]
    return "\n\n".join(paragraphs) + "\n"


def readme_with_section(text: str) -> str:
    """README text with the part between the figures markers regenerated."""
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_BEGIN}\n{readme_section()}{README_END}{tail}"
