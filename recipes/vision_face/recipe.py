"""vision-face: face images by person -> an L2-normalised face embedding, scored open-set (LFW-style).

Persons are split by identity, so validation and test faces belong to people the network never saw.
The network (any timm backbone with an embedding head) learns with ArcFace, CosFace or batch-hard
triplets; it is judged on verification pairs (ROC AUC, EER, TAR at FAR 1e-2/1e-3, accuracy at the
threshold chosen on validation pairs) and on rank-1/rank-5 identification, beside raw-pixel and
eigenfaces baselines scored the same way. Face images are biometric data: none is copied into the run
directory unless `report.show_faces=true`, and the state keeps counts, never names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlkit import console
from dlkit.data.images import check_bad_fraction, is_image
from dlkit.data.inputs import expand_inputs
from dlkit.errors import UserError
from dlkit.recipe import Baseline, Finding, Recipe, RecipeData

from .baselines import eigenfaces_predictor, fit_eigenfaces, fit_raw_pixels, raw_pixels_predictor
from .config import DEFAULT_MARGIN, LOSSES, MARGIN_LOSSES, recipe_config
from .data import FaceSet, check_split_sizes, gather, identity_splits, normalisation, read_faces, transform
from .gallery import PairSet, load_gallery, match, save_gallery
from .metrics import face_metrics, face_target, scorer_preds
from .training import (
    PKBatches,
    batch_hard_triplet,
    build_network,
    embed,
)
from .verification import calibrate_threshold

PREDICT_CHUNK = 64  # gallery images embedded at a time


class VisionFace(Recipe):
    name = "vision-face"
    task = "face verification and identification"
    description = "Face embeddings (timm + ArcFace/CosFace/triplet) scored open-set: verification and rank-1."
    default_model = "resnet10t"
    sample_data = "sample_data/vision_face"
    sample_inputs = (
        "sample_data/vision_face/person_001",
        "sample_data/vision_face/person_002/person_002_01.jpg",
    )
    monitor = "verification_auc"
    monitor_mode = "max"
    inference_keys = ("eval.", "report.show_faces", "data.max_bad_fraction", "data.no_face")

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.gallery = None
        self.gallery_inputs: torch.Tensor | None = None
        self.cropper = None

    def setup(self, state: dict, fresh: bool) -> None:
        """The face cropper (when on) and, for predict, the gallery to match against (its images
        normalised here, embedded by the model on the first predict batch)."""
        from .crop import FaceCropper

        self.cropper = FaceCropper() if state.get("crop_faces") else None
        if self.cfg["predict"]["gallery"] and not fresh:
            self.gallery = load_gallery(self.cfg["predict"]["gallery"], state, self.cropper)
            if self.gallery.images is not None:
                norm = transform(state, self.cfg["data"], train=False)
                self.gallery_inputs = torch.stack([norm(img) for img in self.gallery.images])

    # --- data -----------------------------------------------------------------------------
    def _splits(self, path: Path, items, given, evaluate_all: bool) -> list[str]:
        if evaluate_all:
            named = [g == "test" for g in given]
            return ["test" if (n or not any(named)) else "skip" for n in named]
        d = self.cfg["data"]
        splits = identity_splits(items, given, d["val_fraction"], d["test_fraction"], self.cfg["seed"])
        check_split_sizes(path, items, splits)
        return splits

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        d = self.cfg["data"]
        found = gather(path)
        splits = self._splits(path, found.items, found.given, evaluate_all)
        fitting = state is None
        if fitting:
            state = {"image_size": d["image_size"], "channels": d["channels"], "crop_faces": d["crop_faces"]}
        if self.cropper is None and state["crop_faces"]:
            from .crop import FaceCropper

            self.cropper = FaceCropper()
        decoded = {}
        for split in ("train", "val", "test"):
            faces = [f for f, s in zip(found.items, splits, strict=True) if s == split]
            if faces:
                decoded[split] = read_faces(
                    faces, state["image_size"], state["channels"], self.cropper, d["no_face"] == "keep"
                )
        notes = self._notes(path, found, decoded)
        if evaluate_all and ("test" not in decoded or len(set(decoded["test"].labels)) < 2):
            raise UserError(
                f"'{path}' has fewer than 2 readable persons to evaluate on",
                "give a folder with one sub-folder per person (2 persons or more)",
            )
        if fitting:
            train, val = decoded["train"], decoded["val"]
            state.update(normalisation(train))
            state["train_persons"] = len(train.persons)
            state["counts"] = _counts(decoded, found)
            e = self.cfg["eval"]
            state["eigenfaces"] = fit_eigenfaces(train, val, e["pairs"], self.cfg["seed"])
            state["raw_pixels"] = fit_raw_pixels(val, state, e["pairs"], self.cfg["seed"])
        sets = {s: FaceSet(v, transform(state, d, train=s == "train")) for s, v in decoded.items()}
        return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes=notes)

    def _notes(self, path: Path, found, decoded: dict) -> list[str]:
        bad = [b for f in decoded.values() for b in f.bad]
        total = sum(len(f) + len(f.bad) for f in decoded.values())
        notes = [check_bad_fraction(bad, total, self.cfg["data"]["max_bad_fraction"], path)]
        if found.empty_folders:
            names = ", ".join(p.name for p in found.empty_folders[:5])
            notes.append(f"skipped {len(found.empty_folders)} person folder(s) with no images: {names}")
        no_face = [p for f in decoded.values() for p in f.no_face]
        if no_face:
            what = "kept whole" if self.cfg["data"]["no_face"] == "keep" else "skipped"
            notes.append(
                f"no face found in {len(no_face)} image(s), {what} (data.no_face): {no_face[0]}, ..."
            )
        return [n for n in notes if n]

    def check(self, path: Path) -> list[Finding]:
        from .checks import face_findings

        return super().check(path) + face_findings(self, path)

    def train_batches(self, data: RecipeData, batch_size: int, generator: torch.Generator):
        from torch.utils.data import BatchSampler, RandomSampler

        d = self.cfg["data"]
        if d["sampler"] == "pk" or (d["sampler"] == "auto" and self.cfg["loss"]["name"] == "triplet"):
            return PKBatches(data.train.labels, batch_size, d["images_per_person"], generator)
        return BatchSampler(RandomSampler(data.train, generator=generator), batch_size, drop_last=False)

    # --- model and step --------------------------------------------------------------------
    def build_model(self, state: dict) -> torch.nn.Module:
        m = self.cfg["model"]
        return build_network(
            m["name"],
            m["embedding_dim"],
            state["channels"],
            m["dropout"],
            state["train_persons"],
            self.cfg["loss"],
        )

    def step(self, model: torch.nn.Module, batch: dict, stage: str) -> dict:
        """Training: the margin loss over the training persons (or batch-hard triplets). Val/test persons
        are new, so their loss is batch-hard triplets (a diagnostic); the metrics score the embeddings."""
        emb = embed(model, batch["image"])
        loss_cfg = self.cfg["loss"]
        if stage == "train" and loss_cfg["name"] in MARGIN_LOSSES:
            loss = getattr(model, "module", model).margin(emb, batch["label"])
        else:
            margin = loss_cfg["margin"] if loss_cfg["margin"] is not None else DEFAULT_MARGIN["triplet"]
            loss = batch_hard_triplet(emb, batch["label"], margin if loss_cfg["name"] == "triplet" else 0.3)
        return {"loss": loss, "preds": scorer_preds(emb), "target": face_target(batch)}

    def metrics(self, state: dict) -> dict:
        e = self.cfg["eval"]
        return face_metrics(e["pairs"], e["gallery_size"], self.cfg["seed"], state.get("threshold"))

    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """The accept/reject threshold: the similarity cut most often right on the validation pairs."""
        labels = np.asarray(data.val.labels)
        found = calibrate_threshold(
            outputs["embedding"].double().numpy(), labels, self.cfg["eval"]["pairs"], self.cfg["seed"]
        )
        return {"threshold": found.pop("threshold"), "calibration": found}

    # --- baselines and details ---------------------------------------------------------------
    def baselines(self, data: RecipeData) -> dict[str, Baseline]:
        state = data.state
        return {
            "raw_pixels": raw_pixels_predictor(state["raw_pixels"]),
            "eigenfaces": eigenfaces_predictor(state["eigenfaces"], state),
        }

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict[str, dict]) -> dict:
        state = data.state
        labels = data.test.labels
        e = state["eigenfaces"]
        return {
            "protocol": {
                "open_set": True,
                "test_persons": len(set(labels)),
                "test_images": len(labels),
                "pairs_requested": self.cfg["eval"]["pairs"],
                "gallery_images_per_person": self.cfg["eval"]["gallery_size"],
                "threshold": state.get("threshold"),
                "note": "TAR at a FAR below 1 / (different-person pairs) can only be read as FAR 0",
            },
            "calibration": state.get("calibration"),
            "counts": state.get("counts"),
            "eigenfaces": {
                k: e[k] for k in ("grid", "colour", "components_kept", "whiten", "val_auc", "threshold")
            },
            "raw_pixels": state["raw_pixels"],
        }

    def report_sections(self, data: RecipeData, tested, evaluation: dict, folder: Path) -> list:
        from .report import sections

        return sections(self, data, tested, evaluation, folder)

    @classmethod
    def tune_space(cls) -> dict:
        return {
            "train.lr": {"float": {"low": 5e-4, "high": 1e-2, "log": True}},
            "loss.name": {"choices": list(LOSSES)},
            "loss.scale": {"choices": [16.0, 30.0, 64.0]},
            "model.embedding_dim": {"choices": [64, 128, 256]},
        }

    # --- predict ---------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict):
        paths = expand_inputs(inputs, is_image, "image files")
        faces = read_faces(
            [(p, "?") for p in paths], state["image_size"], state["channels"], self.cropper, True
        )
        if faces.bad:
            names = ", ".join(str(b) for b in faces.bad[:5])
            if not len(faces):
                raise UserError(
                    f"no readable inputs: none of the {len(faces.bad)} image(s) can be read ({names})"
                )
            console.warn(f"skipped {len(faces.bad)} unreadable input(s): {names}")
        evaluation = transform(state, self.cfg["data"], train=False)
        if self.cfg["predict"]["pairs"]:
            return PairSet(faces.images, faces.paths, evaluation)
        return FaceSet(faces, evaluation)

    def _gallery_embeddings(self, model: torch.nn.Module, device: torch.device) -> torch.Tensor:
        """Embed the gallery once per job (its images were read in setup); save them if asked."""
        g = self.gallery
        if g.embeddings is None:
            parts = [
                embed(model, self.gallery_inputs[start : start + PREDICT_CHUNK].to(device)).cpu()
                for start in range(0, len(self.gallery_inputs), PREDICT_CHUNK)
            ]
            g.embeddings = torch.cat(parts)
            if self.cfg["predict"]["save_gallery"]:
                save_gallery(g, self.cfg["predict"]["save_gallery"])
        return g.embeddings

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        emb = embed(model, batch["image"])
        if "image_b" in batch:
            return {"similarity": (emb * embed(model, batch["image_b"])).sum(1)}
        if self.gallery is None:
            return {"embedding": emb}
        self._gallery_embeddings(model, emb.device)
        scores, persons = match(emb, self.gallery, self.cfg["predict"]["top_k"])
        return {"scores": scores, "persons": persons.float()}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        threshold = state["threshold"]
        if "similarity" in outputs:
            return [
                {
                    "a": pair.split("\n")[0],
                    "b": pair.split("\n")[1],
                    "similarity": round(s, 6),
                    "same_person": s >= threshold,
                    "threshold": threshold,
                }
                for pair, s in zip(ids, outputs["similarity"].tolist(), strict=True)
            ]
        if "embedding" in outputs:
            return [
                {"path": p, "embedding": [round(v, 6) for v in e]}
                for p, e in zip(ids, outputs["embedding"].tolist(), strict=True)
            ]
        names = self.gallery.names
        records = []
        for p, scores, persons in zip(
            ids, outputs["scores"].tolist(), outputs["persons"].long().tolist(), strict=True
        ):
            accepted = scores[0] >= threshold
            records.append(
                {
                    "path": p,
                    "match": names[persons[0]] if accepted else "unknown",
                    "best_candidate": names[persons[0]],
                    "similarity": round(scores[0], 6),
                    "accepted": accepted,
                    "threshold": threshold,
                    "top_k": [
                        {"person": names[i], "similarity": round(s, 6)}
                        for i, s in zip(persons, scores, strict=True)
                    ],
                }
            )
        return records

    def write_outputs(self, records: list[dict], outputs: dict, state: dict, out_dir: Path) -> None:
        """With report.show_faces=true and a gallery of images only: a strip (input | match) per input."""
        if not self.cfg["report"]["show_faces"] or self.gallery is None or self.gallery.images is None:
            return
        from .outputs import match_strips

        match_strips(records, self.gallery, state, out_dir)


def _counts(decoded: dict, found) -> dict:
    """Persons and images per split (single-image persons counted apart), and what was skipped."""
    out: dict = {}
    for split, faces in decoded.items():
        per_person = np.bincount(np.asarray(faces.labels, dtype=int), minlength=len(faces.persons))
        out[split] = {
            "persons": int((per_person > 0).sum()),
            "images": len(faces),
            "single_image_persons": int((per_person == 1).sum()),
        }
    out["skipped"] = {
        "unreadable": sum(len(f.bad) for f in decoded.values()),
        "no_face": sum(len(f.no_face) for f in decoded.values()),
        "empty_person_folders": len(found.empty_folders),
    }
    return out
