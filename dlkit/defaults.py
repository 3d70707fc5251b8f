"""Shared defaults for every recipe: one documented option per key (see `dlkit info RECIPE`)."""

from __future__ import annotations

from dlkit.config import Schema, opt

SHARED: Schema = {
    "seed": opt(0, "random seed for weights, splits, shuffling and augmentation"),
    "device": opt("auto", "where to train: auto picks cuda, then mps, then cpu (or cuda:1 etc.)"),
    "deterministic": opt(
        False,
        "bit-exact training on CUDA (CPU always is): deterministic kernels, cuBLAS workspace :4096:8 "
        "(~32 MiB more GPU memory), no cuDNN autotuning; slower (often 10-30%), and an op with no "
        "deterministic CUDA kernel stops the run naming it",
    ),
    "threads": opt(
        "auto",
        "CPU threads for training and inference; auto = the cores this process may use (affinity mask, "
        "container quota, OMP_NUM_THREADS), at most 16; OpenMP threads sleep rather than spin while waiting",
        type=int,
        auto=True,
    ),
    "data": {
        "path": opt(None, "data file or folder (each recipe defaults to its sample data)", type=str),
        "batch_size": opt(64, "examples per step"),
        "num_workers": opt(
            "auto",
            "data-loading worker processes (0 = load in the main process); auto = none for data held in "
            "memory or with 2 cores or fewer, else up to 4 for data read from disk per example",
            type=int,
            auto=True,
        ),
        "val_fraction": opt(0.15, "share held out for validation when the data has no val split"),
        "test_fraction": opt(0.15, "share held out for testing when the data has no test split"),
    },
    "model": {
        "name": opt("", "model architecture (recipe-specific)"),
        "pretrained": opt(
            None, "local path to weights to start from (safetensors or .pth state dict)", type=str
        ),
        "init": opt(
            "default",
            "weight init for layers trained from scratch",
            ["default", "kaiming", "xavier", "orthogonal"],
        ),
        "activation": opt(
            "relu", "activation for nets dlkit builds itself", ["relu", "gelu", "silu", "tanh", "leaky_relu"]
        ),
        "dropout": opt(0.0, "dropout probability before the output layer"),
    },
    "loss": {
        "name": opt(
            "cross_entropy",
            "training loss (recipes accept the ones that fit their task)",
            ["cross_entropy", "focal", "mse", "mae", "kl_div"],
        ),
        "label_smoothing": opt(0.0, "label smoothing for cross-entropy (0 = off)"),
    },
    "train": {
        "epochs": opt(
            "auto",
            "passes over the training data; auto = from the data size: at least train.min_steps "
            "optimizer steps, at most train.max_epochs epochs (the resolved number is in config.yaml)",
            type=int,
            auto=True,
        ),
        "min_steps": opt(600, "with epochs=auto: the fewest optimizer steps a run takes"),
        "max_epochs": opt(100, "with epochs=auto: the most epochs a run takes"),
        "max_steps": opt(
            None, "stop after this many optimizer steps, even within an epoch (null = no cap)", type=int
        ),
        "val_every": opt(
            "auto",
            "optimizer steps between validation checks (and checkpoints); auto = every epoch, or every "
            "1000 steps when an epoch is longer",
            type=int,
            auto=True,
        ),
        "optimizer": opt("adamw", "optimizer", ["adamw", "sgd"]),
        "lr": opt(1e-3, "peak learning rate"),
        "weight_decay": opt(0.01, "L2 penalty (decoupled for AdamW); not applied to biases and norms"),
        "l1": opt(0.0, "L1 penalty on weights, added to the loss (0 = off)"),
        "momentum": opt(0.9, "SGD momentum"),
        "scheduler": opt(
            "cosine", "learning-rate schedule after warmup", ["none", "cosine", "step", "onecycle"]
        ),
        "warmup": opt(0.0, "fraction of all steps spent warming the lr up linearly from 0"),
        "step_every": opt(3, "epochs between lr drops for the step schedule"),
        "step_gamma": opt(0.1, "lr multiplier at each drop for the step schedule"),
        "grad_accum": opt(1, "batches whose gradients add up before one optimizer step"),
        "grad_clip": opt(1.0, "clip the global gradient norm to this (null = off)", nullable=True),
        "amp": opt(
            "auto",
            "mixed precision: auto = bf16 on CUDA where supported, off on CPU",
            ["auto", "bf16", "fp16", "off"],
        ),
        "channels_last": opt(
            "auto",
            "channels-last memory format for conv nets (faster on recent GPUs); auto = on for a model with "
            "convolutions on CUDA, off elsewhere",
            type=bool,
            auto=True,
        ),
        "compile": opt(
            False,
            "torch.compile the training forward (faster steps on GPU after a warm-up of a minute or so); "
            "parts that cannot be compiled run as usual",
        ),
        "patience": opt(
            5,
            "stop after this many validation checks without improvement of the monitored metric "
            "(0 = off); never before train.min_steps steps",
        ),
        "log_every": opt(20, "steps between loss read-outs (the only host syncs in the loop)"),
    },
    "dist": {
        "timeout": opt(
            1800.0,
            "seconds a process of a distributed run waits for the others before the job fails",
        ),
    },
    "predict": {
        "chunk_size": opt(
            1024, "examples predicted, written out and freed at a time (keeps memory flat on large inputs)"
        ),
    },
    "report": {
        "enabled": opt(True, "write RUN/report/index.html (plots, metrics, verdict) when training ends"),
    },
    "logging": {
        "tensorboard": opt(
            False, "also write TensorBoard event files to RUN/tb/ (needs pip install 'dlkit[report]')"
        ),
    },
    "grad_monitor": {
        "enabled": opt(True, "summarise per-layer gradient norms each epoch and warn when unhealthy"),
        "every": opt(20, "steps between gradient-norm samples"),
        "vanish": opt(
            1e-5, "warn when the earliest layers' gradient norm is below this fraction of the last layers'"
        ),
        "explode": opt(1e3, "warn when any layer's gradient norm rises above this (or is NaN/Inf)"),
    },
}
