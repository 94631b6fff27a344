"""The ``tomowidgets`` command: each step of the pipeline from a shell, same defaults as the API.

Run ``tomowidgets --help`` or ``tomowidgets COMMAND --help``. Heavy modules (TensorFlow above all) are
imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import errno
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import numpy as np

from tomowidgets._calibration import (
    FILAMENT_CONTACT,
    FILAMENT_HYSTERESIS,
    FILAMENT_MAX_SD,
    FILAMENTS,
    HYSTERESIS,
    PICK_CORE_SCORE,
    PICK_HYSTERESIS,
    PICK_MIN_RELATIVE_SIZE,
    THIN,
    THRESHOLD,
    VOTE,
)

DESCRIPTION = """\
Annotate cryo-electron tomograms with small convolutional networks (Chen et al., Nat Methods 2017).

Typical session:
  tomowidgets synth cell/                      # a synthetic cell with ground truth (demo data)
  tomowidgets preprocess cell/tomogram.mrc cell/pre.mrc
  tomowidgets train membrane.tiles.npz -o membrane.keras --compete ribosome.tiles.npz
  tomowidgets apply membrane.keras cell/pre.mrc -o scores/   # calibrated scores, 1.0 = annotated
  tomowidgets demo                             # all of the above on built-in data

Volumes are MRC files; sizes and filter cut-offs are in Å, using the voxel size in the MRC header.
"""


#: What the system says, turned into what to do (by errno).
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or check the file's permissions",
    errno.EPERM: "not permitted: write elsewhere or check the file's permissions",
}


def _system_message(err: BaseException) -> str:
    """A failure of the system as one line: the file, what happened and what to do."""
    if isinstance(err, OSError):
        where = f"'{err.filename}': " if err.filename else ""
        hint = _OS_HINTS.get(err.errno or 0)
        return f"{where}{err.strerror or err}" + (f"; {hint}" if hint else "")
    from tomowidgets.apply import WorkersLostError

    if isinstance(err, CancelledError) and not isinstance(err, WorkersLostError):  # says it already
        return (f"{err or 'cancelled'}; the Dask workers were lost: the finished part is kept, "
                "run again to resume")
    return str(err)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0 on success, 1 on any expected failure (bad
    input, a full or read-only disk, permissions, lost workers). argparse keeps 2 for a wrong command
    line. Errors are one line naming the file and what to do; ``--debug`` shows the traceback."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    with warnings.catch_warnings():
        # a warning is a one-line note to the user, not a source line and a class name
        warnings.simplefilter("default", RuntimeWarning)
        warnings.showwarning = lambda message, *_, **__: print(
            f"tomowidgets {args.command}: note: {message}", file=sys.stderr)
        try:
            args.func(args)
        except (ValueError, FileNotFoundError) as err:
            if args.debug:
                raise
            print(f"tomowidgets {args.command}: error: {err}", file=sys.stderr)
            return 1
        except (OSError, OverflowError, CancelledError) as err:
            if args.debug:
                raise
            print(f"tomowidgets {args.command}: error: {_system_message(err)}", file=sys.stderr)
            return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tomowidgets", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe an MRC file, a training set (.npz) or a network (.keras)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "synth",
        help="make a synthetic cell: tomogram, noise-free density, ground-truth labels, particles",
        description="Write OUT_DIR/tomogram.mrc, OUT_DIR/density.mrc, OUT_DIR/labels/<feature>.mrc "
        "(int8 masks) and OUT_DIR/particles.csv (voxel coordinates z, y, x from 0, angles in degrees).",
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    _add_cell_options(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "rescale",
        help="resample a tomogram to another voxel size (Fourier crop or pad), e.g. a network's",
        description="Resample to --to Å/voxel by cropping (coarser) or zero-padding (finer) its "
        "Fourier transform, so nothing aliases; the field of view and the mean stay, the header gets "
        "the new voxel size. Rescale raw tomograms, then preprocess.",
    )
    p.add_argument("input", type=Path, metavar="IN", help="input tomogram (MRC)")
    p.add_argument("output", type=Path, metavar="OUT", help="output tomogram (MRC, float32)")
    p.add_argument("--to", type=float, required=True, metavar="APIX", help="new voxel size in Å")
    p.add_argument("--apix", type=float, default=None, help="voxel size in Å, overriding the MRC header")
    p.set_defaults(func=cmd_rescale)

    p = sub.add_parser(
        "preprocess",
        help="band-pass (Å), normalize to mean 0 / sd 1 and clamp, as the networks expect",
        description="Fourier band-pass with soft edges, then normalize and clamp. Works slab by slab "
        "on a memory-mapped input, so tomograms larger than memory are fine.",
    )
    p.add_argument("input", type=Path, metavar="IN", help="input tomogram (MRC)")
    p.add_argument("output", type=Path, metavar="OUT", help="output tomogram (MRC, float32)")
    _add_filter_options(p)
    p.add_argument("--erase-gold", action="store_true",
                   help="first replace gold fiducials (extreme dark or bright blobs) by local "
                   "background, as e2tomogram.py --erasegold does (reads the tomogram into memory)")
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser(
        "train",
        help="train one feature's network on a training set (.tiles.npz)",
        description="Train the paper's network (40@15x15 -> pool -> 40@15x15 -> 1@15x15) on the tiles, "
        "calibrate it so 1.0 is the annotated level, and save it as a .keras file with its metadata.",
    )
    p.add_argument("tiles", type=Path, metavar="TILES.npz")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="NET.keras")
    _add_train_options(p)
    p.add_argument("--compete", type=Path, nargs="+", default=[], metavar="OTHER.tiles.npz",
                   help="the other features' training sets: their positive tiles train this "
                   "network as negatives, so that merged networks rarely claim one structure "
                   "twice (recommended when the networks will be merged)")
    p.add_argument("--turns", type=int, default=1, metavar="N",
                   help="calibrate for `apply --turns N`: judge the output averaged over the painted "
                   "tiles turned by 0, 90, 180, 270 degrees, the first N (1-4; default 1)")
    p.add_argument("--check", action="store_true",
                   help="judge the network on tiles it did not train on: train a second one on 80%% "
                   "of the tiles from another seed, score it on the rest and print a reliability "
                   "report with advice (kept in the .keras file; doubles the training time)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on a built-in synthetic cell",
        description="Synthesize a cell, preprocess it, build training sets from its ground truth, "
        "train networks, annotate a second, unseen cell, merge, pick ribosomes, average them and "
        "report each step against the unseen cell's ground truth; writes every product and a "
        "one-page summary.png.",
    )
    p.add_argument("-o", "--out-dir", type=Path, default=Path("demo_output"), metavar="DIR")
    p.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256), metavar=("Z", "Y", "X"))
    p.add_argument("--epochs", type=int, default=20, help="training epochs per network (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--features", nargs="+", default=None, metavar="FEATURE",
                   help="features to train (default: membrane double_membrane microtubule ribosome)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "apply",
        help="annotate tomograms with trained networks: one score map per feature and tomogram",
        usage="tomowidgets apply NET.keras [NET.keras ...] TOMO.mrc [TOMO.mrc ...] -o DIR [options]",
        description="Run every network (.keras, from `tomowidgets train`) over every slice of every "
        "tomogram (.mrc/.rec/.map, preprocessed like the training data and at the networks' voxel "
        "size) and write DIR/<tomogram name>.<feature>.mrc: calibrated scores, 1.0 = the level of "
        "the voxels annotated for training (threshold there, or merge features). Tomograms are "
        "read slab by slab, so they may be larger than memory. Interrupted (Ctrl-C, a crash, a job "
        "time limit), run the same command again: finished slices are kept. No TensorFlow needed.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="networks (.keras) and tomograms (.mrc, .rec, .map, also .gz or .bz2), "
                   "told apart by their names")
    p.add_argument("-o", "--out-dir", type=Path, required=True, metavar="DIR",
                   help="directory for the score maps (created if needed)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="Dask scheduler (e.g. tcp://10.0.0.1:8786) whose workers share these files: "
                   "slices are spread over them (start it with `dask scheduler`, then `dask worker "
                   "ADDRESS --nworkers auto --nthreads 1` on each machine)")
    p.add_argument("--apix", type=float, default=None,
                   help="voxel size of the tomograms in Å, overriding their MRC headers")
    p.add_argument("--float16", action="store_true",
                   help="store scores as float16 (half the disk space, 3 significant digits)")
    p.add_argument("--slab", type=int, default=None, metavar="N",
                   help="slices per slab: the unit of work, progress and resuming (default: ~32 MiB)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads per network (default: all cores; 1 per task with --scheduler)")
    p.add_argument("--engine", choices=["auto", "fft", "keras"], default="auto",
                   help="fft: the CPU FFT engine; keras: Keras predict (cuDNN on a GPU); auto "
                   "(default): keras where TensorFlow sees a GPU and no --scheduler, else fft")
    p.add_argument("--turns", type=int, default=1, metavar="N",
                   help="test-time augmentation: average each network over the tomogram turned "
                   "about z by 0, 90, 180, 270 degrees, the first N of them (1-4; default 1: off); "
                   "N times the time; calibrate the networks for it (train --turns N); it helped "
                   "on synthetic cells and not on a real one, so compare with 1 on your data (README)")
    p.add_argument("--restart", action="store_true",
                   help="discard the finished slices of an interrupted run and start again")
    p.set_defaults(func=cmd_apply)
    _add_particle_commands(sub)
    return parser


def _add_particle_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge feature score maps into one label map (highest calibrated score >= 1 wins)",
        description="Per voxel, the feature whose calibrated score is highest wins if it reaches the "
        "threshold (the paper's rule); 0 = background. Writes an int8 MRC with the feature names in "
        "its header and in a .json beside it. Give each map as NAME=FILE, or FILE whose name ends "
        "in .<feature>.mrc as `tomowidgets apply` writes them.",
    )
    p.add_argument("scores", nargs="+", metavar="[NAME=]SCORES.mrc")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="LABELS.mrc")
    p.add_argument("--threshold", type=float, default=THRESHOLD,
                   help="lowest calibrated score a feature needs to win a voxel (default 1.0)")
    p.add_argument("--hysteresis", type=_number_or_off, default=HYSTERESIS, metavar="FRACTION|off",
                   help="also label weaker voxels (this fraction of the threshold; default "
                   f"{HYSTERESIS}) that continue a called structure within their slice: fewer breaks in "
                   "membranes and filaments; 'off' keeps the paper's single threshold")
    p.add_argument("--vote", nargs="+", type=_vote_arg, default=VOTE, metavar="A,B|off",
                   help="groups of features that are readings of one kind of structure: each structure "
                   "they call within a slice takes the feature most of its voxels have (default "
                   f"{' '.join(','.join(g) for g in VOTE)}; names not merged are ignored); 'off' lets "
                   "each voxel keep its own best feature, the paper's rule")
    p.add_argument("--thin", nargs="+", default=THIN, metavar="FEATURE|off",
                   help="features whose calls are cut to their score's full width at half maximum, so "
                   "that a strongly contrasted membrane is called no wider than a faint one (default "
                   f"{' '.join(THIN)}; names not merged are ignored); 'off' labels every voxel that "
                   "reaches the threshold, the paper's rule")
    p.add_argument("--filaments", nargs="+", default=FILAMENTS, metavar="FEATURE|off",
                   help="features whose calls are filaments: a piece called within a slice that is far "
                   f"wider than a microtubule (spread > {FILAMENT_MAX_SD:g} Å across) is left to the other "
                   f"features (default {' '.join(FILAMENTS)}; names not merged are ignored); 'off' keeps "
                   "every call whatever its shape, the paper's rule")
    p.add_argument("--filament-contact", type=_number_or_off, default=FILAMENT_CONTACT,
                   metavar="FRACTION|off",
                   help="a filament's piece within a slice of whose surrounding voxels at least this "
                   f"fraction is called another feature (default {FILAMENT_CONTACT}) is a stretch of that "
                   "structure, e.g. an arc of a mitochondrion, and is left to the other features; 'off' "
                   "judges pieces by their width alone")
    p.add_argument("--filament-hysteresis", type=_number_or_off, default=FILAMENT_HYSTERESIS,
                   metavar="FRACTION|off",
                   help="--hysteresis for the filaments (default "
                   f"{FILAMENT_HYSTERESIS}): a tube is continued further than a membrane, through the "
                   "faint stretches of one running across the tilt axis, where its score also reaches "
                   "this fraction of its peak nearby; 'off' continues them as --hysteresis says")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser(
        "pick",
        help="pick particles from a score map (connected regions) or seed points on a continuous one",
        description="Discrete particles (ribosomes, ...): one pick per connected region scoring "
        ">= threshold (regions of touching particles cut at their score maxima), at its "
        "score-weighted centroid. Continuous features (microtubules, "
        "membranes): --spacing seeds points on the annotation at least that far apart. Writes a "
        "RELION-5 .star (rlnCoordinateX/Y/Z in voxels from 0, and tomogram-centred Å) or a .csv; "
        "the file states its conventions in its header.",
    )
    p.add_argument("scores", type=Path, metavar="SCORES.mrc")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="PICKS.star|PICKS.csv")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help="calibrated score threshold (1.0)")
    p.add_argument("--min-size", type=int, default=None,
                   help="smallest region in voxels, counted down to --hysteresis (default 3*10^5 Å^3, "
                   "a tenth of a ribosome: 300 voxels at 10 Å)")
    p.add_argument("--min-relative-size", type=_number_or_off, default=PICK_MIN_RELATIVE_SIZE,
                   metavar="FRACTION|off",
                   help=f"drop regions smaller than this fraction of the median region, so that smaller "
                   f"complexes are not picked (default {PICK_MIN_RELATIVE_SIZE}); 'off' keeps every "
                   "region of at least --min-size")
    p.add_argument("--hysteresis", type=_number_or_off, default=PICK_HYSTERESIS, metavar="FRACTION|off",
                   help=f"grow each region that reaches the threshold down to this fraction of it "
                   f"before its size is tested (default {PICK_HYSTERESIS}); 'off' keeps the paper's "
                   "single threshold")
    p.add_argument("--core-score", type=_number_or_off, default=PICK_CORE_SCORE, metavar="SCORE|off",
                   help=f"where the picks' median core score is below this many times the threshold "
                   f"(default {PICK_CORE_SCORE}), the network under-calls this tomogram: pick again at a "
                   "threshold lowered by their ratio (to half at most); 'off' keeps --threshold")
    p.add_argument("--min-distance", type=float, default=None, help="smallest distance between picks, voxels")
    p.add_argument("--spacing", type=float, default=None,
                   help="seed points this many voxels apart instead (continuous features)")
    p.add_argument("--orient", choices=("normal", "filament", "axis"), default=None,
                   help="with --spacing: seeds with the membrane normal (normal), or every SPACING "
                   "along traced filaments with their axis and number (filament); without: picks "
                   "with the long axis of their blob (axis, within --axis-radius). Written as RELION "
                   "tilt/psi priors (rlnAngleTiltPrior, rlnAnglePsiPrior, rlnHelicalTubeID)")
    p.add_argument("--axis-radius", type=float, default=100.0,
                   help="with --orient axis: radius in Å around each pick, about the particle's size")
    p.add_argument("--lumen", type=float, default=0.0,
                   help="with --orient filament: radius in Å of a hollow filament's unannotated lumen, "
                   "filled before tracing (microtubule walls: 80)")
    p.add_argument("--feature", default=None, help="feature name for the table (default: from the file name)")
    p.add_argument("--tomo-name", default=None, help="rlnTomoName (default: the tomogram's file stem, "
                   "i.e. SCORES's without its .FEATURE, as apply names score maps)")
    p.set_defaults(func=cmd_pick)

    p = sub.add_parser(
        "tomograms",
        help="write RELION-5's tomograms.star for tomograms, to import picks with them",
        description="One row per tomogram: rlnTomoName (the file name without .mrc, as `pick` "
        "names rlnTomoName), sizes in unbinned tilt-series pixels, pixel size and binning, "
        "microscope and the tomogram's path. Add the tilt-series columns in RELION.",
    )
    p.add_argument("tomograms", nargs="+", type=Path, metavar="TOMO.mrc")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="tomograms.star")
    p.add_argument("--tilt-series-apix", type=float, default=None,
                   help="pixel size in Å of the unbinned tilt series (default: each tomogram's, "
                   "binning 1)")
    p.add_argument("--voltage", type=float, default=300.0, help="kV (300)")
    p.add_argument("--cs", type=float, default=2.7, help="spherical aberration, mm (2.7)")
    p.add_argument("--amplitude-contrast", type=float, default=0.1, help="fraction (0.1)")
    p.add_argument("--hand", type=int, choices=(-1, 1), default=-1, help="rlnTomoHand (-1)")
    p.set_defaults(func=cmd_tomograms)

    p = sub.add_parser(
        "average",
        help="cut subtomograms at picked positions, align them without a reference and average",
        description="Reference-free subtomogram averaging with gold-standard half sets, missing-wedge "
        "aware alignment and weighting; writes the map, its half maps' FSC (.csv) and the particles "
        "with their orientations (.star). Reports the resolution at FSC 0.143.",
    )
    p.add_argument("tomogram", type=Path, metavar="TOMO.mrc", help="tomogram to cut particles from")
    p.add_argument("particles", type=Path, metavar="PICKS.star|PICKS.csv")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="AVERAGE.mrc")
    p.add_argument("--box", type=int, default=32, help="box size in voxels (default 32)")
    p.add_argument("--prior-range", type=float, default=None, metavar="DEG",
                   help="use the particles' tilt/psi priors (rlnAngleTiltPrior, rlnAnglePsiPrior, "
                   "as `pick --orient` writes them): search every spin about them but tilt them by "
                   "at most DEG degrees")
    p.add_argument("--iterations", type=int, default=6, help="refinement iterations (default 6)")
    p.add_argument("--symmetry", default="c1", help="point-group symmetry about z: c1, c2, ... (default c1)")
    p.add_argument("--tilt-range", type=float, default=60.0,
                   help="largest tilt in degrees, for the missing wedge (default 60)")
    p.add_argument("--skip-edges", action="store_true",
                   help="leave out particles whose box crosses the tomogram's edge (default: pad them "
                        "with the box mean)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_average)


def _named_scores(items: Sequence[str]) -> dict:
    from tomowidgets.io import mrc_stem, read_tomogram

    scores = {}
    for item in items:
        name, _, file = item.rpartition("=")
        path = Path(file)
        if not name:
            name = mrc_stem(path).rsplit(".", 1)[-1]
        if name in scores:
            raise ValueError(f"feature {name!r} is given twice; name the maps as NAME=FILE")
        scores[name] = read_tomogram(path, mmap=True)
    return scores


def _is_off(text: str) -> bool:
    """Whether an option's value turns it off ('off' or 'none', any case)."""
    return text.strip().lower() in ("off", "none")


def _number_or_off(text: str) -> float | None:
    """``--hysteresis``, ``--filament-contact``, ``--filament-hysteresis``, ``--min-relative-size``,
    ``--core-score``: a number, or None for 'off' (merge and pick check the range)."""
    if _is_off(text):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.5, or 'off', got {text!r}") from None


def _vote_arg(text: str) -> tuple[str, ...]:
    """One ``--vote`` group: feature names joined by commas; 'off' alone is no group (merge checks names)."""
    if _is_off(text):
        return ()
    names = tuple(name.strip() for name in text.split(","))
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(f"expected feature names joined by commas, e.g. "
                                         f"membrane,double_membrane, or 'off', got {text!r}")
    return names


def cmd_merge(args: argparse.Namespace) -> None:
    """Merge score maps into a label map."""
    from tomowidgets.merge import merge

    labels = merge(_named_scores(args.scores), threshold=args.threshold, out=args.output,
                   hysteresis=args.hysteresis, vote=[group for group in args.vote if group],
                   thin=[name for name in args.thin if not _is_off(name)],
                   filaments=[name for name in args.filaments if not _is_off(name)],
                   filament_contact=args.filament_contact,
                   filament_hysteresis=args.filament_hysteresis)
    fractions = ", ".join(f"{k} {v:.1%}" for k, v in labels.fractions().items())
    print(f"{labels!r}\nvoxels: {fractions}")


def cmd_pick(args: argparse.Namespace) -> None:
    """Pick particles or seed points and write them as STAR or CSV."""
    from tomowidgets.io import read_tomogram
    from tomowidgets.particles import (
        filament_seeds,
        membrane_seeds,
        orient_particles,
        pick_particles,
        seed_points,
        write_particles,
    )

    scores = read_tomogram(args.scores, mmap=True)
    feature = args.feature or next(iter(_named_scores([str(args.scores)])))
    common = {"threshold": args.threshold, "feature": feature,
              "tomogram": args.tomo_name or _tomogram_name(args.scores, feature)}
    if args.orient in ("normal", "filament") and args.spacing is None:
        raise ValueError(f"--orient {args.orient} needs --spacing (voxels between seeds)")
    if args.orient == "axis" and args.spacing is not None:
        raise ValueError("--orient axis orients picks: leave out --spacing")
    if args.orient == "normal":
        table = membrane_seeds(scores, args.spacing * scores.apix, **common)
    elif args.orient == "filament":
        table = filament_seeds(scores, args.spacing * scores.apix, lumen=args.lumen, **common)
    elif args.spacing is not None:
        table = seed_points(scores, args.spacing, **common)
    else:
        options = {k: v for k, v in (("min_size", args.min_size), ("min_distance", args.min_distance))
                   if v is not None}
        table = pick_particles(scores, **common, **options, hysteresis=args.hysteresis,
                               min_relative_size=args.min_relative_size, core_score=args.core_score)
        if table.attrs["threshold"] < args.threshold:
            print(f"threshold lowered from {args.threshold:g} to {table.attrs['threshold']:.2f}: the "
                  f"picks scored low on this tomogram (--core-score off keeps {args.threshold:g})")
        if args.orient == "axis":
            table = orient_particles(table, scores, args.axis_radius, threshold=table.attrs["threshold"])
    write_particles(args.output, table, apix=scores.apix, origin=scores.origin, shape=scores.shape)
    print(f"{len(table)} {feature} positions written to {args.output}")


def _tomogram_name(scores: Path, feature: str) -> str:
    """The tomogram's name from its score map's: ``apply`` writes ``<tomogram>.<feature>.mrc``,
    and RELION matches rlnTomoName against the tomogram's name in tomograms.star."""
    from tomowidgets.io import mrc_stem

    stem, suffix = mrc_stem(scores), f".{feature}"
    return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else stem


def cmd_tomograms(args: argparse.Namespace) -> None:
    """Write RELION-5's tomograms.star."""
    from tomowidgets.particles import write_tomograms_star

    write_tomograms_star(args.output, list(args.tomograms), tilt_series_apix=args.tilt_series_apix,
                         voltage=args.voltage, spherical_aberration=args.cs,
                         amplitude_contrast=args.amplitude_contrast, hand=args.hand)
    print(f"{len(args.tomograms)} tomogram(s) written to {args.output}")


def cmd_average(args: argparse.Namespace) -> None:
    """Extract, align and average subtomograms."""
    from tomowidgets.average import average
    from tomowidgets.io import atomic_path, read_tomogram, write_tomogram
    from tomowidgets.particles import extract_subvolumes, read_particles, write_particles

    tomo = read_tomogram(args.tomogram, mmap=True)
    grid: dict[str, Any] = {"apix": tomo.apix, "origin": tomo.origin, "shape": tomo.shape}
    table = read_particles(args.particles, **grid)
    # skipped particles are a warning, which main() prints as a note
    boxes, kept = extract_subvolumes(tomo, table, args.box, pad=not args.skip_edges, return_table=True)
    try:
        result = average(boxes, apix=tomo.apix, iterations=args.iterations, symmetry=args.symmetry,
                         tilt_range=args.tilt_range, rng=args.seed, particles=kept,
                         prior_range=args.prior_range)
    except ValueError as err:
        raise ValueError(f"'{args.particles}' in '{args.tomogram}': {err}") from None
    write_tomogram(args.output, result.map, apix=tomo.apix, labels=["tomowidgets average"])
    stem = args.output.with_suffix("")
    with atomic_path(stem.with_name(stem.name + "_fsc.csv")) as tmp:
        np.savetxt(tmp, np.column_stack(result.fsc), delimiter=",",
                   header="frequency_per_angstrom,fsc", comments="")
    assert result.particles is not None   # average(particles=...) returns them updated
    write_particles(stem.with_name(stem.name + "_particles.star"), result.particles, **grid)
    print(f"{result!r}\nwritten: {args.output}, {stem.name}_fsc.csv, {stem.name}_particles.star")
    odd = np.flatnonzero(result.outliers())
    if odd.size:  # other complexes picked as the particle stand out here (AverageResult.outliers)
        print(f"{odd.size} particle(s) match the average far worse than the rest (rows "
              f"{', '.join(str(i + 1) for i in odd[:10])}{', ...' if odd.size > 10 else ''} of "
              f"{stem.name}_particles.star): look at them before trusting every pick")


def _add_cell_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256), metavar=("Z", "Y", "X"),
                   help="size in voxels (default 64 256 256)")
    p.add_argument("--apix", type=float, default=10.0, help="voxel size in Å (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same cell")
    p.add_argument("--snr", type=float, default=None, help="signal-to-noise ratio (variance ratio)")
    p.add_argument("--defocus", type=float, default=None, help="defocus in µm (underfocus > 0)")
    p.add_argument("--no-ctf", action="store_true", help="image without a CTF")
    p.add_argument("--imaging", choices=("fourier", "tilt_series"), default="fourier",
                   help="imaging model: 'fourier' (wedge and CTF as Fourier masks, the default) or "
                   "'tilt_series' (a ±60° tilt series with per-tilt CTF, dose and noise, reconstructed "
                   "by weighted back-projection)")
    p.add_argument("--varied", action="store_true",
                   help="vary the layout as real cells vary: several mitochondria with membranes 7-22 nm "
                   "apart, microtubules up to 30° out of the slice plane, a more crowded cytoplasm")
    p.add_argument("--distractors", action="store_true",
                   help="also fill free cytoplasm with apoferritin- and spliceosome-like complexes, "
                   "labelled too (placed last: the rest of the cell is as without them)")


def _add_filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lowpass", type=_cutoff, default="auto",
                   help="low-pass cut-off in Å: removes noise finer than this (default: 20, or the "
                   "Nyquist limit, 2 × the voxel size, for voxels coarser than 10 Å)")
    p.add_argument("--highpass", type=float, default=4000.0,
                   help="high-pass cut-off in Å: removes ice gradients broader than this (default 4000)")
    p.add_argument("--clamp", type=float, default=3.0,
                   help="clamp at ± this many standard deviations (default 3)")
    p.add_argument("--apix", type=float, default=None,
                   help="voxel size in Å, overriding the MRC header")


def _cutoff(text: str) -> float | str:
    """A cut-off in Å, or "auto"."""
    return text if text == "auto" else float(text)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=20, help="passes over the training set (default 20)")
    p.add_argument("--batch-size", type=int, default=20, help="tiles per gradient step (default 20)")
    p.add_argument("--learning-rate", type=float, default=0.01, help="first-epoch rate (default 0.01)")
    p.add_argument("--decay", type=float, default=0.9,
                   help="learning-rate factor per epoch (default 0.9: 10%% less each epoch)")
    p.add_argument("--l1", type=float, default=1e-5, help="L1 weight decay on kernels (default 1e-5)")
    p.add_argument("--seed", type=int, default=0, help="random seed for initialisation and augmentation")
    p.add_argument("--feature", default=None, help="feature name (default: the training set's)")
    p.add_argument("--scale", type=float, default=None,
                   help="magnify the augmented tiles by up to this fraction (0.4: ±40 %%), for "
                   "features whose size varies; default 0.4 for double_membrane (membrane "
                   "spacings differ between organelles), else 0 (rotations only, as the paper)")
    p.add_argument("--calibration", choices=("auto", "mean", "dice"), default="auto",
                   help="1.0 is the mean output on painted pixels (mean, the paper's: best for "
                   "picking) or the level whose calls best match the painted masks (dice: wider, "
                   "better voxel overlap for membranes and filaments); auto (default) takes mean "
                   "when the masks are solid blobs inside their tiles (particles), else dice")


def cmd_info(args: argparse.Namespace) -> None:
    """Print what each file holds."""
    for path in args.files:
        print(describe(path))


def describe(path: Path) -> str:
    """One paragraph describing an MRC, training-set or network file."""
    if not path.exists():
        raise FileNotFoundError(f"No file at '{path}'")
    if path.suffix == ".keras":
        from tomowidgets.network import read_metadata

        meta = read_metadata(path)
        keys = ("feature", "apix", "amplitude", "preprocessing")
        text = f"{path}: network " + ", ".join(f"{k}={meta.get(k)!r}" for k in keys)
        if isinstance(meta.get("reliability"), dict):
            from tomowidgets.network.reliability import Reliability

            text += "\n" + str(Reliability.from_dict(meta["reliability"]))
        return text
    if path.suffix == ".npz":
        from tomowidgets.trainset import TrainingSet

        return f"{path}: {TrainingSet.load(path)!r}"
    from tomowidgets.io import read_tomogram

    tomo = read_tomogram(path, mmap=True)
    stats = _stats(tomo.data)
    return (f"{path}: {tomo!r}\n  origin (z, y, x) = {tomo.origin} Å; "
            + ", ".join(f"{k} = {v:.4g}" for k, v in stats.items()))


def _stats(data: np.ndarray, slab: int = 16) -> dict[str, float]:
    """Min, max, mean and sd computed slab by slab (bounded memory for memory-mapped files)."""
    from tomowidgets.io import moments

    m = moments(data, slab)
    return {"min": m.lo, "max": m.hi, "mean": m.mean, "sd": m.sd}


def cmd_synth(args: argparse.Namespace) -> None:
    """Write a synthetic cell and its ground truth."""
    cell = _make_cell(args.shape, args.apix, args.seed, args.snr, args.defocus, not args.no_ctf,
                      args.imaging, args.varied, args.distractors)
    from tomowidgets.synthetic import write_cell

    write_cell(cell, args.out_dir)
    print(f"{cell!r}\nwritten to {args.out_dir}/")


def _make_cell(shape, apix, seed, snr, defocus, ctf, imaging="fourier", varied=False,  # noqa: ANN001, ANN202 - thin adapter
               distractors=False):
    from tomowidgets.synthetic import make_cell

    options = {"snr": snr, "defocus": defocus}
    options = {k: v for k, v in options.items() if v is not None}
    return make_cell(tuple(shape), apix=apix, seed=seed, ctf=ctf, imaging=imaging, varied=varied,
                     distractors=distractors, **options)


def cmd_preprocess(args: argparse.Namespace) -> None:
    """Band-pass, normalize and clamp a tomogram into a new MRC file."""
    from tomowidgets.io import read_tomogram
    from tomowidgets.preprocess import preprocess

    tomo = read_tomogram(args.input, mmap=not args.erase_gold, apix=args.apix)
    t0 = time.perf_counter()
    if args.erase_gold:
        from scipy import ndimage

        from tomowidgets.preprocess import erase_gold, find_gold

        gold = find_gold(tomo)
        tomo = erase_gold(tomo, gold)
        print(f"erased {ndimage.label(gold)[1]} gold blobs ({gold.mean():.2%} of the voxels)")
    out = preprocess(tomo, lowpass=args.lowpass, highpass=args.highpass, clamp=args.clamp,
                     out=args.output)
    print(f"{out!r}\npreprocessed in {time.perf_counter() - t0:.1f} s")


def cmd_rescale(args: argparse.Namespace) -> None:
    """Resample a tomogram to another voxel size."""
    from tomowidgets.io import read_tomogram, write_tomogram
    from tomowidgets.preprocess import rescale

    tomo = read_tomogram(args.input, mmap=True, apix=args.apix)
    t0 = time.perf_counter()
    out = rescale(tomo, args.to)
    write_tomogram(args.output, out, labels=[f"tomowidgets rescale: {tomo.apix:g} -> {out.apix:g} A"])
    print(f"{out!r}\nrescaled from {tomo.apix:g} Å/voxel in {time.perf_counter() - t0:.1f} s; "
          f"written to {args.output}")


def cmd_train(args: argparse.Namespace) -> None:
    """Train, calibrate and save one network."""
    from tomowidgets._validate import check_turns
    from tomowidgets.network import FeatureNet
    from tomowidgets.trainset import TrainingSet

    check_turns(args.turns)   # before minutes of training, not after
    ts = TrainingSet.load(args.tiles)
    if args.compete:
        ts = ts.with_competitors([TrainingSet.load(path) for path in args.compete])
        print(f"competing with {', '.join(p.name for p in args.compete)}: {ts!r}")
    net = FeatureNet(args.feature or ts.feature or args.tiles.name.split(".")[0], seed=args.seed,
                     context=ts.context)
    t0 = time.perf_counter()
    history = net.train(ts, epochs=args.epochs, batch_size=args.batch_size,
                        learning_rate=args.learning_rate, decay=args.decay, l1=args.l1,
                        scale=args.scale, calibration=args.calibration)
    if args.turns != 1:   # train() calibrated for applying without turns
        net.calibrate(ts, method=args.calibration, turns=args.turns)
    print(f"{net!r}\ntrained in {time.perf_counter() - t0:.1f} s, final loss "
          f"{history['loss'][-1]:.3f}")
    net.save(args.output)
    print(f"saved to {args.output}")
    if args.check:  # after saving: a failed check must not lose the trained network
        from tomowidgets.network import check_reliability

        t0 = time.perf_counter()
        print("checking: a second network trained on 80% of the tiles, judged on the rest…")
        print(f"{check_reliability(net, ts)}\nchecked in {time.perf_counter() - t0:.1f} s")
        net.save(args.output)
        print(f"report saved in {args.output}")


def cmd_demo(args: argparse.Namespace) -> None:
    """The whole pipeline on built-in synthetic data."""
    from tomowidgets.demo import DEMO_FEATURES, run_demo

    run_demo(args.out_dir, shape=tuple(args.shape), epochs=args.epochs, seed=args.seed,
             features=tuple(args.features or DEMO_FEATURES))


def cmd_apply(args: argparse.Namespace) -> None:
    """Apply networks to tomograms, writing one score map per feature and tomogram."""
    from tomowidgets.apply import apply_many
    from tomowidgets.io import MRC_SUFFIXES, is_mrc_name

    nets = [f for f in args.files if f.suffix.lower() == ".keras"]
    tomos = [f for f in args.files if is_mrc_name(f)]
    other = [str(f) for f in args.files if f not in nets and f not in tomos]
    if other:
        raise ValueError(f"{other} are neither networks (.keras) nor tomograms "
                         f"({', '.join(MRC_SUFFIXES)}, maybe .gz or .bz2); rename or convert them")
    if not nets or not tomos:
        raise ValueError("give at least one network (.keras) and one tomogram (.mrc)")
    inputs: list[Any] = list(tomos)
    if args.apix is not None:    # the headers' voxel sizes are wrong or missing: use the one given
        from tomowidgets.io import read_tomogram

        inputs = [read_tomogram(t, mmap=True, apix=args.apix, check_values=False) for t in tomos]
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--scheduler needs Dask: pip install 'tomowidgets[dask]'") from None
        try:
            client = Client(args.scheduler, timeout=30)
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot reach the Dask scheduler at {args.scheduler} ({err}); start "
                             "it with `dask scheduler` and workers with `dask worker ADDRESS`") from None
    t0 = time.perf_counter()
    try:
        results = apply_many(nets, inputs, args.out_dir, client=client, slab=args.slab,
                             threads=args.threads, engine=args.engine, turns=args.turns,
                             dtype=np.float16 if args.float16 else np.float32,
                             resume=not args.restart)
    except KeyboardInterrupt:
        print(f"tomowidgets apply: interrupted; run the same command again to continue from the "
              f"finished slices (kept in {args.out_dir}/*.partial)", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if client is not None:
            client.close()
    for result in results:
        for feature, scores in result.items():
            print(f"{feature}: {scores!r}")
    print(f"applied {len(nets)} network(s) to {len(tomos)} tomogram(s) in "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
