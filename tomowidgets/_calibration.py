"""The calibrated score scale that ties networks, merging, picking and suggestions together."""

#: The annotated level of a calibrated score map. Each network's output is divided by its mean over
#: the voxels the annotator painted (Chen et al. 2017, Online Methods; or, with
#: ``calibrate(method="dice")``, by the level whose calls best reproduce the painted masks), so 1.0
#: means "as strong as what was annotated", whatever the feature; merging, picking, seeding and
#: tile suggestions use it as their default threshold, which makes the features' maps comparable.
THRESHOLD = 1.0

#: merge()'s default hysteresis: a voxel scoring at least this fraction of its threshold is labelled
#: where it continues, within its slice, a structure that reaches the threshold. On unseen synthetic
#: cells (3 annotators × 2 cells, eight training/imaging conditions) it raised the merged Dice of
#: every feature in every condition (membrane 0.85 -> 0.93, double membrane 0.30 -> 0.52,
#: microtubule 0.76 -> 0.86 on Fourier cells) at -0.3..+3 points of cross-talk (+7 in one), picks
#: unchanged (README, #16).
HYSTERESIS = 0.5

#: merge()'s default `vote`: features that are two readings of one kind of structure. A membrane
#: and a double membrane are told apart by what lies beside them, so the networks split one
#: structure between them where that is ambiguous (a small vesicle, a mitochondrion's flank); each
#: structure that one or both call within a slice takes the feature most of its voxels have. On
#: unseen synthetic cells (3 annotators × 2 cells; Fourier and back-projected, standard and varied)
#: it raised membrane and double-membrane Dice in every condition and cut cross-talk, e.g. 3.8 ->
#: 1.2 % from back-projected training to Fourier cells and 13.4 -> 8.9 % on varied back-projected
#: ones (README, #16). Names not among the merged features are ignored.
VOTE: tuple[tuple[str, ...], ...] = (("membrane", "double_membrane"),)

#: merge()'s default `thin`: features whose calls are cut to the full width at half maximum of their
#: score. A network's output grows with the contrast of what it sees, so a strongly contrasted
#: membrane (a cell envelope) scores many times the threshold and its call at 1.0 spreads over the
#: blurred flanks, two or three voxels wider than the bilayer on each side; a voxel of these
#: features counts only where its score reaches `THIN_FRACTION` of the feature's highest score
#: within `THIN_WINDOW` voxels in its slice, which makes the width of a call independent of its
#: contrast. On unseen synthetic cells (3 annotators × 2 cells, nine training/imaging conditions)
#: it raised membrane Dice in all 54 annotator × cell pairs (e.g. 0.90 -> 0.96 from training on
#: both imaging models to Fourier cells, 0.73 -> 0.76 on varied back-projected ones) and changed
#: double membranes by -0.00..+0.01. Thinning the double membranes too lost them up to 0.02
#: elsewhere, so they are left as called (README, #16).
THIN: tuple[str, ...] = ("membrane",)
THIN_FRACTION = 0.5
THIN_WINDOW = 11

#: merge()'s default `filaments`: features whose calls are filaments, none wider than a microtubule
#: (25 nm). However a slice cuts a tube, it leaves a band or a ring whose voxels spread across its
#: narrow axis by a standard deviation of ~90 Å (up to 190 Å measured in called tubes, with their
#: halo); a called piece of such a feature spreading more than `FILAMENT_MAX_SD` Å across is
#: something else (the ring of a small mitochondrion, which a microtubule network takes for tubes
#: where no CTF fringes split its two membranes), and its voxels are left to the other features.
#: On unseen synthetic cells without a CTF (3 annotators × 2 cells) it cut cross-talk 19.5 -> 9.4 %
#: and raised double membranes 0.65 -> 0.79 and microtubules 0.43 -> 0.51; in the eight conditions
#: with a CTF nothing changed, no piece being that wide; real microtubules (the cylindra crops) keep
#: every call (README, #16).
FILAMENTS: tuple[str, ...] = ("microtubule",)
FILAMENT_MAX_SD = 220.0

#: merge()'s default `filament_contact`. A tube crossing a slice runs through cytoplasm: its call is
#: ringed mostly by background, and where it passes another structure, along a short stretch of its
#: outline. Where a microtubule network calls a stretch of a mitochondrion's outline (an arc as
#: narrow as a tube), that stretch is flanked by the outline's own double-membrane calls; where a
#: piece of a filament's call has at least this fraction of the voxels around it called another
#: feature, it is left to the other features as a piece too wide is. On unseen synthetic cells (3
#: annotators × 2 cells, nine conditions) cross-talk without a CTF fell 9.4 -> 2.7 % and double
#: membranes rose 0.79 -> 0.85; microtubule Dice rose in every condition (e.g. 0.79 -> 0.85 on
#: varied Fourier cells, 0.90 -> 0.95 from back-projected to Fourier cells) and fell by more than
#: 0.0001 in one pair of 54 (0.88 -> 0.86, a tube passing a mitochondrion). 0.1 gave up such
#: tubes more often, 0.3 kept more arcs (README, #16).
FILAMENT_CONTACT = 0.2

#: merge()'s default `filament_hysteresis`: the `filaments` features are continued within a slice
#: down to this fraction of their threshold, rather than `HYSTERESIS`, and each of their voxels
#: counts only where it reaches this fraction of the feature's highest score within
#: `FILAMENT_WINDOW` Å. A tube running across the tilt axis keeps the least of its signal through
#: the missing wedge and comes out faint, in stretches, in back-projected cells; a tube is one
#: continuous structure along its axis, so continuing a called one further finds those stretches
#: without calling weak voxels on their own, and the cut relative to the local peak keeps a
#: strongly scored tube's halo out. On unseen synthetic cells (3 annotators × 2 cells) it raised
#: each annotator's microtubule Dice: 0.973 -> 0.980 Fourier -> Fourier, 0.910 -> 0.926 (sd 0.059
#: -> 0.045) Fourier -> back-projected, 0.911 -> 0.924 back-projected -> back-projected; the tubes
#: across the tilt axis went from 0.41 and 0.46 to 0.46 and 0.51 of their voxels called, while
#: cells without one lost up to 0.006. The other features were unchanged. Continuing to 0.3
#: without the cut widened the strong tubes (Fourier cells 0.973 -> 0.958); 0.25 found more of the
#: faint ones but widened the real microtubule of the cylindra crop (Dice 0.921 -> 0.900; 0.3:
#: 0.919). Without a CTF, where the microtubule network calls arcs of mitochondria, it costs
#: microtubules 0.633 -> 0.607; that a piece is first judged as `HYSTERESIS` calls it keeps
#: cross-talk there at 2.5 % (2.7 % without continuing, 3.5 % continuing unjudged) (README, #16).
FILAMENT_HYSTERESIS = 0.3
#: Half the width, in Å, of the window in which `FILAMENT_HYSTERESIS` cuts a filament's scores
#: relative to their peak: 150 Å, a 31-voxel window at 10 Å, a little wider than a microtubule.
FILAMENT_WINDOW = 150.0

#: pick_particles()'s default hysteresis: a particle's region is every voxel scoring at least this
#: fraction of the threshold that connects to one reaching it, so that its size (which the minimum
#: size tests) is most of the particle rather than its strongest core. The other complexes of a
#: crowded cytoplasm come out smaller than a ribosome at this level. On unseen synthetic cells (3
#: annotators × 2 cells, eight training/imaging conditions) regions at 0.4 holding at least 10⁶ Å³
#: raised ribosome recall in 31 of the 48 annotator × cell pairs and lowered it in none (e.g.
#: varied back-projected cells 72 -> 83 %, back-projected 92 -> 96 %), precision -2 to +2 points
#: (README, #16).
PICK_HYSTERESIS = 0.4

#: pick_particles()'s default `min_relative_size`: a region smaller than this fraction of the median
#: region (among those that pass the other tests) is dropped. A network calls the particles it was
#: trained on 4-9 times larger (medians) than the other complexes it half-recognises (ribosomes
#: against proteasomes on synthetic cells), but how large it calls either changes with the imaging:
#: the median ribosome region was 1300 voxels where networks trained on back-projected cells scored
#: Fourier-mask cells, and 4700 the other way round. A minimum relative to what the network calls
#: in the same tomogram follows that change where a fixed one cannot: on unseen synthetic cells
#: (3 annotators × 2 cells) it took picks from networks trained on Fourier-mask cells and applied
#: to back-projected ones from 80 / 99 % to 98 / 98 % precision / recall, and the other way round
#: from 100 / 63 % to 98 / 82 % (README, #16).
PICK_MIN_RELATIVE_SIZE = 0.4

#: pick_particles()'s default `core_score`: the median score over the picks' cores (their ``score``
#: column) in units of the threshold, where a network's calibration holds. The calibration makes a
#: painted particle's mean score 1.0, and its core scores more: the picks' median was 1.1-1.6 on
#: unseen synthetic cells imaged as the training cell was, 1.8 on the real EMPIAR-10499 cell, but
#: 0.7-0.8 where networks trained on back-projected cells scored Fourier-mask ones, whose ribosomes
#: they call more weakly. Lowering the threshold by the ratio there (3 annotators × 2 cells) took
#: picks from 98 / 82 % to 98 / 95 % precision / recall, and left them within a point elsewhere
#: but on varied back-projected cells (98 / 84 -> 97 / 89 %) (README, #16).
PICK_CORE_SCORE = 1.5
#: The lowest that `PICK_CORE_SCORE` lowers the threshold, as a fraction of it: half, so that a
#: map whose few picks are all weak is not picked down to its noise.
PICK_LOWEST_THRESHOLD = 0.5
