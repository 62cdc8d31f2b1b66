"""Every benchmark, by suite and case: the one list `python -m bench` runs from.

A case is one script with its arguments. A script that needs something only the person
running it has (a run folder to serve, an older checkout to compare) takes it after
``--``: ``python -m bench serving load -- runs/digits-default``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    script: str  # bench/<script>.py
    about: str  # what it measures, one line
    args: tuple[str, ...] = ()  # the arguments it runs with
    needs: str | None = None  # what must follow ``--`` (None: nothing)
    minutes: float = 1.0  # about how long it takes on 2 CPU cores (for the listing)


@dataclass(frozen=True)
class Suite:
    about: str
    cases: dict[str, Case] = field(default_factory=dict)


SUITES: dict[str, Suite] = {
    "default": Suite("`convnet train` with no options on the built-in digits", {
        "digits": Case("digits_default", "candidate recipes for the default, over seeds",
                       ("--only", "chosen", "--seeds", "3"), minutes=3),
        "candidates": Case("digits_default", "every candidate recipe for the default",
                           minutes=40),
    }),
    "speed": Suite("training and inference speed on this machine", {
        "throughput": Case("throughput", "train images/s: convnet, a plain PyTorch loop, Keras",
                           minutes=15),
        "steps": Case("step_choices", "one step under each speed switch (the auto choices)",
                      minutes=5),
        "inference": Case("inference", "Predictor (torch) against onnxruntime", minutes=3),
        "folding": Case("folding", "forward passes with batch norms folded into their "
                        "convolutions against as trained, and by batch", minutes=3),
        "layout": Case("layout", "the answering network's passes with weights as a saved run "
                       "reads them against channels-last, gray and RGB", minutes=2),
        "predict-photos": Case("predict_photos", "predict imagenet on 400 photos: malloc "
                               "left alone, convnet's default, onnx", ("--rounds", "3"),
                               minutes=6),
        "shared-cpu": Case("shared_cpu", "training beside other busy processes", minutes=20),
        "nproc": Case("nproc", "one process of two threads against two of one (torchrun)",
                      minutes=5),
        "cifar": Case("cifar_speed", "the fast CIFAR-10 recipe on the shared JPEGs",
                      minutes=12),
    }),
    "planner": Suite("what the plan chooses, against hand-picked settings", {
        "zoo": Case("auto_zoo", "no options against hand-picked settings on the zoo",
                    ("--table",), minutes=60),
        "time": Case("time_budget", "does --time hold, from process start to exit",
                     minutes=10),
        "time-short": Case("time_budget", "short budgets, this checkout against another in "
                           "turn", ("--only", "gray-digits,mnist-28,cifar2-500,shapes-64",
                                    "--budgets", "6s,12s", "--rounds", "3"),
                           needs="--old CHECKOUT", minutes=15),
        "lr-find": Case("lr_find", "--lr find against the planner's lr on digits", minutes=6),
    }),
    "finetune": Suite("starting from ImageNet", {
        "memory": Case("memory_finetune", "CIFAR-10 held in memory (its binary files): from "
                       "scratch and from ImageNet under the same --time", minutes=8),
        "speed": Case("finetune_speed", "fine-tuning images/s against a plain loop; predict",
                      minutes=8),
        "pairs": Case("finetune_pairs", "scratch, fine-tuning and the choice on photo pairs",
                      ("--table",), minutes=40),
        "partial": Case("finetune_partial", "the earlier layers frozen against every layer "
                        "training, cat/dog photos at 160 px", minutes=12),
        "estimate": Case("finetune_estimate", "the plan's time estimate against the run's "
                         "features and epochs (or the head alone and the scoring after it), "
                         "eight settings on cat/dog photos", minutes=10),
        "time-to-accuracy": Case("time_to_accuracy", "convnet with a tenth of a plain "
                                 "fine-tune's time, fresh caches, against that loop",
                                 minutes=10),
        "tenth-seeds": Case("time_to_accuracy", "the tenth's bar on the means of three seeds "
                            "(loop and convnet), four photo folders, fresh caches",
                            ("--only", "six", "catdog", "four", "ten", "--seeds", "3"),
                            minutes=35),
        "no-options": Case("time_to_accuracy", "the no-option run on the same photo folders, "
                           "fresh caches", ("--no-loop", "--share", "--default"), minutes=8),
        "patience": Case("time_to_accuracy", "the no-option run (patience 2) against every "
                         "planned epoch trained, three photo folders, fresh caches",
                         ("--no-loop", "--share", "--default", "--only", "six", "four",
                          "catdog", "--variant", "--patience 99"), minutes=25),
        "half-time": Case("time_to_accuracy", "half of the no-option run's wall time at the "
                          "issue (102.6 s six, 210.2 s cat/dog) given as --time, fresh caches",
                          ("--no-loop", "--share", "--only", "six", "catdog", "--variant",
                           "--time 51s", "--time 105s"), minutes=10),
        "head-refit": Case("head_refit", "the head alone refitted with its validation "
                           "images: test accuracy, calibration and 90% sets, random draws",
                           minutes=3),
        "head-fit": Case("head_fit", "the new head on ImageNet features: AdamW epochs against "
                         "logistic regression, three photo folders", minutes=3),
        "head-only": Case("time_to_accuracy", "the head alone (--epochs 0: fitted on "
                          "features computed once, no epochs), two photo folders, fresh "
                          "caches", ("--no-loop", "--share", "--only", "six", "catdog",
                                     "--variant", "--epochs 0"), minutes=4),
        "unusual": Case("unusual_folders", "no options and --time 10s on folders unlike the "
                        "tuned ones: imbalanced, grayscale photos and digits, large files, "
                        "many small classes, a handful of images; fresh caches", minutes=10),
        "networks": Case("time_to_accuracy", "the plan's choice among Lite0/1/2 against a "
                         "run from each, three photo folders, fresh caches",
                         ("--no-loop", "--share", "--default", "--only", "six", "four",
                          "catdog", "--archs", "lite0", "lite1", "lite2"), minutes=40),
    }),
    "data": Suite("reading data, and cleaning it", {
        "folder": Case("folder_data", "scan, decode and cache a folder of JPEGs", minutes=5),
        "decode-estimate": Case("decode_estimate", "the plan's estimate of a folder's "
                                "decoding against the load, fresh cache, three folders",
                                minutes=1),
        "decode-photos": Case("decode_photos", "phone-sized JPEGs decoded at a reduced "
                              "scale against every pixel", minutes=1),
        "copies-digits": Case("near_duplicates", "planted copies in digits", ("digits",),
                              minutes=2),
        "copies-cifar": Case("near_duplicates", "planted copies in CIFAR-10", ("cifar",),
                             minutes=6),
        "copies-features": Case("feature_copies", "copies the pixels hide, by ImageNet "
                                "features", minutes=6),
        "suspects-digits": Case("suspects", "moved labels found by suspects, digits",
                                ("digits",), minutes=2),
        "suspects-cifar": Case("suspects", "moved labels found by suspects, CIFAR-10",
                               ("cifar",), minutes=8),
    }),
    "answers": Suite("answers you can trust: calibrated probabilities", {
        "digits": Case("calibration", "ECE, log loss, Brier before/after, no-option digits",
                       ("digits",), minutes=1),
        "cifar": Case("calibration", "the same, no-option CIFAR-10 (shared JPEGs)",
                      ("cifar",), minutes=15),
        "photos": Case("calibration", "the same, a 2-class photo folder from ImageNet",
                       ("photos",), minutes=6),
        "unknown-digits": Case("unknown", "unknown scores: digits run against Fashion-MNIST",
                               ("digits",), needs="--fashion FASHION_MNIST_IDX_DIR",
                               minutes=2),
        "unknown-catdog": Case("unknown", "unknown scores: CIFAR cat/dog fine-tune against "
                               "CIFAR vehicles", ("catdog",), minutes=8),
    }),
    "notebook": Suite("the texts as a notebook", {
        "texts": Case("notebook", "examples/the-texts.ipynb top to bottom, fresh kernels",
                      ("--rounds", "3"), minutes=2),
    }),
    "resume": Suite("checkpoints and exact resume", {
        "matrix": Case("resume_matrix", "every preset × kill point × precision", minutes=30),
        "cost": Case("checkpoint_cost", "what checkpoints cost the default run", minutes=5),
    }),
    "serving": Suite("export, serving and the studio", {
        "export": Case("export_parity", "ONNX parity for every preset on real images",
                       minutes=3),
        "load": Case("serve_load", "convnet serve against a hand-written handler, loopback",
                     needs="a run folder to serve", minutes=5),
        "studio": Case("studio_flow", "the studio's API flow, timed", minutes=2),
        "studio-photos": Case("studio_flow", "the same for six classes of photos: how soon "
                              "the model so far answers", ("--photos",), minutes=6),
        "int8": Case("int8", "export --int8 against the float file: accuracy and speed",
                     ("digits", "photos"), minutes=10),
        "int8-run": Case("int8", "the same for a run you have", needs="--run RUN_FOLDER",
                         minutes=3),
        "profile": Case("onnx_profile", "where an exported file spends its time, by operator",
                        needs="exported .onnx files", minutes=1),
        "int8-variants": Case("int8_variants", "what else int8 could quantize in a run's "
                              "file: dense layers, everything; QDQ and QOperator",
                              needs="a run folder", minutes=2),
        "int8-core": Case("int8_variants", "the network alone in int8, without the float "
                          "work around it", ("--core",), needs="a run folder", minutes=2),
    }),
    "compare": Suite("the same measurements on two checkouts", {
        "checkouts": Case("before_after", "interleaved rounds, old checkout against this one",
                          needs="--old CHECKOUT", minutes=10),
    }),
    "gpu": Suite("the GPU pass (bench/gpu_pass.sh runs it on a lent GPU)", {
        "record": Case("gpu_record", "cifar-fast against airbench94, CUDA events",
                       needs="--data CIFAR_JPEG_FOLDER", minutes=8),
    }),
}

# modules beside the scripts that are no benchmark of their own
HELPERS = {"benchdata", "naive_server", "zoo_data", "suites", "runner", "results", "plain_finetune",
           "__init__", "__main__"}
