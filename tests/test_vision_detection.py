"""vision-detection: COCO and YOLO read into one form, boxes kept aligned, a detector that beats prior boxes,
the layouts users have, and predict's side files in the folder the core picks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import ROOT, expect_user_error, load_sample_generator, train_ok
from dlkit_recipes.vision_detection.boxes import BoxReport, read_boxes
from dlkit_recipes.vision_detection.outputs import coco_results
from torchvision.ops import box_iou

SAMPLE = ROOT / "sample_data" / "vision_detection"
FAST = ["train.log_every=2", "grad_monitor.every=5"]
CLASSES = ["circle", "triangle", "square", "star"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy shared CPU, two spinning OpenMP threads train up to 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """40 generated scenes as train/val/test COCO files + images/."""
    out = tmp_path_factory.mktemp("scenes")
    load_sample_generator("vision_detection").generate(out, seed=3, scenes=40)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """The default model trained briefly (12 epochs) on the sample data, through the train job."""
    from dlkit import console, jobs

    base = tmp_path_factory.mktemp("trained")
    console.set_quiet(True)
    try:
        result = jobs.train(
            "vision-detection", out=base / "run", overrides=["train.epochs=12", "train.lr=4e-3", *FAST]
        )
    finally:
        console.set_quiet(False)
    return {**result, "base": base}


def _recipe(*overrides: str):
    from dlkit.jobs import build_config
    from dlkit.registry import get_recipe

    cls = get_recipe("vision-detection")
    return cls(build_config(cls, None, list(overrides)))


def _coco(path: Path, images: list[dict], annotations: list[dict], categories: list[dict]) -> Path:
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def _copy_images(src: Path, dst: Path, names: list[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(src / "images" / n, dst / n)


# --- learning, evaluate, predict ---------------------------------------------------------------
def test_default_detector_beats_both_prior_box_baselines(trained):
    metrics, baselines = trained["metrics"], trained["baselines"]
    assert trained["monitor"] == "map_50" and set(baselines) == {"centre_prior", "kmeans_priors"}
    for values in baselines.values():
        assert set(values) == {"map_50", "map", "map_75", "ap_per_class"}
    assert trained["strongest_baseline"] == "kmeans_priors" and trained["beats_baseline"] is True
    assert baselines["kmeans_priors"]["map_50"] > baselines["centre_prior"]["map_50"]
    assert metrics["map_50"] > 0.1 > 0.05 > baselines["kmeans_priors"]["map_50"]
    assert (
        metrics["map"] > 5 * baselines["kmeans_priors"]["map"] and 0 <= metrics["map_75"] <= metrics["map_50"]
    )
    assert len(metrics["ap_per_class"]) == 4 and max(metrics["ap_per_class"]) > 0
    per_class = trained["details"]["ap_per_class"]
    assert (
        set(per_class) == {"model", "centre_prior", "kmeans_priors"} and list(per_class["model"]) == CLASSES
    )
    assert per_class["model"]["circle"] == pytest.approx(metrics["ap_per_class"][0], abs=1e-4)

    run = Path(trained["run"])
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["classes"] == CLASSES and state["category_ids"] == [1, 2, 3, 4]
    assert state["image_size"] == 128 and state["counts"] == {"train": 168, "val": 36, "test": 36}
    assert len(state["prior"]["kmeans"]["boxes"]) == 4 and len(state["prior"]["kmeans"]["boxes"][0]) == 25
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {"val_map_50", "val_map", "val_map_75"} <= set(first)


def test_evaluate_and_predict_write_coco_results_and_drawings_beside_the_output(trained, cli, scenes):
    run = Path(trained["run"])
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    evaluated = json.loads(res.out)
    assert evaluated["metrics"]["map_50"] == pytest.approx(trained["metrics"]["map_50"], abs=1e-6)
    assert evaluated["baselines"] == trained["baselines"]  # fitted into the state: no training data needed
    res = cli("evaluate", run, "--data", scenes / "train.json", "--json")  # new labelled data: all of it
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] == 28

    images = sorted((SAMPLE / "images").glob("scene_023*.jpg"))[:5]
    out = trained["base"] / "preds" / "preds.jsonl"
    # batches of one, chunks of two images: the side files are appended chunk by chunk
    args = ["data.batch_size=1", "predict.chunk_size=2", "--output", out, "--json"]
    res = cli("predict", run, *images, *args)
    assert res.code == 0, res.err
    folder = Path(json.loads(res.out)["outputs_dir"])
    assert folder == out.parent / "preds_outputs"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5 and sum(len(r["boxes"]) for r in records) > 0
    for r in records:
        assert (r["width"], r["height"]) == (128, 128)
        assert len(r["boxes"]) == len(r["labels"]) == len(r["scores"])
        assert all(s >= 0.3 for s in r["scores"]) and set(r["labels"]) <= set(CLASSES)
        assert all(0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128 for x1, y1, x2, y2 in r["boxes"])
        overlap = box_iou(torch.tensor(r["boxes"]).reshape(-1, 4), torch.tensor(r["boxes"]).reshape(-1, 4))
        assert (overlap.triu(1) <= 0.7).all()  # one label per object
        assert Path(r["drawn"]) == folder / "drawn" / f"{Path(r['path']).stem}.png"
    assert len({r["image_id"] for r in records}) == 5

    from PIL import Image

    assert sorted(p.name for p in (folder / "drawn").iterdir()) == sorted(f"{p.stem}.png" for p in images)
    with Image.open(folder / "drawn" / f"{images[0].stem}.png") as img:
        assert img.size == (128, 128)

    from pycocotools.coco import COCO

    gt = COCO(str(folder / "coco_images.json"))
    assert sorted(gt.getImgIds()) == sorted(r["image_id"] for r in records)
    results = json.loads((folder / "coco_results.json").read_text())
    assert len(results) == sum(len(r["boxes"]) for r in records)  # every chunk's boxes, none twice
    loaded = gt.loadRes(results)
    assert set(loaded.getImgIds()) <= {r["image_id"] for r in records}
    assert {a["category_id"] for a in results} <= {1, 2, 3, 4}

    res = cli("predict", run, images[0], "predict.draw=false", "--output", out.parent / "plain.jsonl")
    assert res.code == 0, res.err
    plain = out.parent / "plain_outputs"
    assert (plain / "coco_results.json").is_file() and not (plain / "drawn").exists()


# --- layouts -----------------------------------------------------------------------------------------
def _split_files_beside_split_folders(scenes: Path, out: Path) -> None:
    """train.json dev.json test.json beside train/ dev/ test/ holding each split's images."""
    for split, name in (("train", "train"), ("val", "dev"), ("test", "test")):
        data = json.loads((scenes / f"{split}.json").read_text())
        _copy_images(scenes, out / name, [im["file_name"] for im in data["images"]])
        (out / f"{name}.json").write_text(json.dumps(data))


def _roboflow(scenes: Path, out: Path) -> None:
    """train/ valid/ test/, each holding its images and _annotations.coco.json (a Roboflow export)."""
    for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        data = json.loads((scenes / f"{split}.json").read_text())
        _copy_images(scenes, out / name, [im["file_name"] for im in data["images"]])
        (out / name / "_annotations.coco.json").write_text(json.dumps(data))


@pytest.mark.parametrize("layout", [_split_files_beside_split_folders, _roboflow])
def test_split_layouts_train_and_evaluate(cli, tmp_path, scenes, layout):
    data = tmp_path / "data"
    layout(scenes, data)
    found = read_boxes(data, BoxReport())
    assert {s: len(b.images) for s, b in found.items()} == {"train": 28, "val": 6, "test": 6}
    result = train_ok(cli, "vision-detection", tmp_path / "run", "--data", data, "train.epochs=1", *FAST)
    assert result["examples"] == 6 and set(result["baselines"]) == {"centre_prior", "kmeans_priors"}
    state = json.loads((tmp_path / "run" / "preprocess" / "state.json").read_text())
    assert state["counts"] == {"train": 28, "val": 6, "test": 6}
    res = cli("evaluate", tmp_path / "run", "--data", data, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] == 6  # the test split of data that has one


def test_images_elsewhere_are_found_with_image_dir_and_the_error_says_so(cli, tmp_path, scenes):
    data = tmp_path / "data"  # the COCO files alone; their images in a folder of another name
    data.mkdir()
    for split in ("train", "val", "test"):
        shutil.copy(scenes / f"{split}.json", data / f"{split}.json")
    pictures = tmp_path / "pictures"
    shutil.copytree(scenes / "images", pictures)
    expect_user_error(
        cli("train", "vision-detection", "--data", data),
        "40 of 40 images",
        "cannot be read",
        "40 missing",
        "data.image_dir",
        "folder NAME/",
    )
    res = cli("check", "vision-detection", "--data", data, f"data.image_dir={pictures}", "--json")
    assert res.code == 0, res.err
    rows = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert rows["data readable"]["message"] == "28 train / 6 val / 6 test images"


def test_yolo_folder_reads_into_the_same_boxes_as_coco(tmp_path, scenes):
    """The COCO scenes converted to YOLO txt (images/, labels/, classes.txt) read back identically."""
    coco = read_boxes(scenes / "train.json", BoxReport())["all"]
    names = list(coco.categories)
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    _copy_images(scenes, tmp_path / "images", [im.file.name for im in coco.images])
    for im in coco.images:
        lines = [
            f"{names.index(lab)} {(x1 + x2) / 2 / im.width:.6f} {(y1 + y2) / 2 / im.height:.6f} "
            f"{(x2 - x1) / im.width:.6f} {(y2 - y1) / im.height:.6f}"
            for (x1, y1, x2, y2), lab in zip(im.boxes, im.labels, strict=True)
        ]
        (tmp_path / "labels" / f"{im.file.stem}.txt").write_text("\n".join(lines) + "\n")
    yolo = read_boxes(tmp_path, BoxReport())["all"]
    assert yolo.categories == {n: i for i, n in enumerate(names)}
    by_name = {im.file.name: im for im in yolo.images}
    for im in coco.images:
        other = by_name[im.file.name]
        assert other.labels == im.labels
        assert torch.allclose(
            torch.tensor(other.boxes).reshape(-1, 4), torch.tensor(im.boxes).reshape(-1, 4), atol=1e-3
        )


def test_yolo_split_layout_with_split_aliases(tmp_path, scenes):
    yolo = tmp_path / "yolo"
    for folder in ("images/train", "images/validation", "labels/train"):
        (yolo / folder).mkdir(parents=True)
    shutil.copy(scenes / "images" / "scene_0001.jpg", yolo / "images" / "train" / "a.jpg")
    shutil.copy(scenes / "images" / "scene_0002.jpg", yolo / "images" / "validation" / "b.jpg")
    (yolo / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.25 0.25\n")
    (yolo / "data.yaml").write_text("names: [cat, dog]\n")
    found = read_boxes(yolo, BoxReport())
    assert found["train"].images[0].labels == ["dog"] and found["train"].images[0].boxes == [[48, 48, 80, 80]]
    assert found["val"].images[0].boxes == []  # no label file: an image without objects


def test_coco_to_internal_to_coco_results_round_trip(tmp_path):
    """Ground truth read and written back as results scores a perfect mAP against itself."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _copy_images(SAMPLE, tmp_path / "images", ["scene_0001.jpg", "scene_0002.jpg"])
    cats = [{"id": 7, "name": "kite"}, {"id": 3, "name": "cup"}]
    imgs = [
        {"id": 101, "file_name": "scene_0001.jpg", "width": 128, "height": 128},
        {"id": 55, "file_name": "scene_0002.jpg", "width": 128, "height": 128},
    ]
    anns = [
        {"id": 1, "image_id": 101, "category_id": 7, "bbox": [10.5, 20.25, 30.0, 12.75], "iscrowd": 0},
        {"id": 2, "image_id": 101, "category_id": 3, "bbox": [60.0, 70.0, 20.5, 40.0], "iscrowd": 0},
        {"id": 3, "image_id": 55, "category_id": 3, "bbox": [0.0, 0.0, 127.0, 64.0], "iscrowd": 0},
    ]
    for a in anns:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    path = _coco(tmp_path / "annotations.json", imgs, anns, cats)

    report = BoxReport()
    boxset = read_boxes(tmp_path, report)["all"]
    assert not report.counts and boxset.categories == {"kite": 7, "cup": 3}
    by_id = {im.image_id: im for im in boxset.images}
    assert by_id[101].file == tmp_path / "images" / "scene_0001.jpg"
    assert by_id[101].boxes[0] == [10.5, 20.25, 40.5, 33.0] and by_id[101].labels == ["kite", "cup"]

    names = list(boxset.categories)
    detections = [
        {"boxes": im.boxes, "labels": [names.index(n) for n in im.labels], "scores": [1.0] * len(im.boxes)}
        for im in boxset.images
    ]
    ids = [im.image_id for im in boxset.images]
    results = coco_results(ids, detections, list(boxset.categories.values()))
    assert sorted((r["image_id"], r["category_id"], r["bbox"]) for r in results) == sorted(
        (a["image_id"], a["category_id"], a["bbox"]) for a in anns
    )
    gt = COCO(str(path))
    evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


# --- baselines and metrics -------------------------------------------------------------------------
def test_kmeans_priors_find_where_objects_usually_are():
    """Each class keeps to its own corner: the centred prior misses them, k-means priors find them."""
    from dlkit_recipes.vision_detection.baselines import baseline_predictors, fit_priors
    from dlkit_recipes.vision_detection.boxes import Annotated
    from dlkit_recipes.vision_detection.metrics import mean_ap_metrics

    gen = torch.Generator().manual_seed(0)

    def scene(n: int) -> Annotated:
        jitter = (torch.rand(2, 4, generator=gen) * 4 - 2).tolist()
        places = [[8, 8, 40, 40], [80, 70, 120, 120]]
        boxes = [[v + j for v, j in zip(p, jit, strict=True)] for p, jit in zip(places, jitter, strict=True)]
        return Annotated(Path(f"{n}.jpg"), 128, 128, boxes, ["a", "b"])

    prior = fit_priors([scene(n) for n in range(40)], ["a", "b"], seed=0)
    assert json.loads(json.dumps(prior)) == prior  # kept in state.json
    test = [scene(n) for n in range(40, 50)]
    batch = {
        "scale": torch.ones(10, 2),
        "size": torch.full((10, 2), 128.0),
        "boxes": [torch.tensor(s.boxes) for s in test],
        "labels": [torch.tensor([1 if lab == "a" else 2 for lab in s.labels]) for s in test],
    }
    scores = {}
    for name, predict in baseline_predictors(prior).items():
        metric = mean_ap_metrics(2)["map_50"]
        out = predict(batch)
        metric.update(out["preds"], out["target"])
        scores[name] = float(metric.compute())
    assert scores["centre_prior"] < 0.05 and scores["kmeans_priors"] > 0.9


def test_metrics_are_torchmetrics_metrics_that_sync_their_own_states():
    import torchmetrics
    from dlkit_recipes.vision_detection.metrics import mean_ap_metrics

    metrics = _recipe().metrics({"classes": ["a", "b"]})
    assert list(metrics) == ["map_50", "map", "map_75", "ap_per_class"]
    preds = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10]]),
            "scores": torch.tensor([0.9]),
            "labels": torch.tensor([1]),
        }
    ]
    target = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])}]
    for m in metrics.values():
        assert isinstance(m, torchmetrics.Metric) and "detection_box" in m.metric_state
        m.update(preds, target)
    assert float(metrics["map_50"].compute()) == pytest.approx(1.0)
    assert metrics["ap_per_class"].compute().tolist() == [pytest.approx(1.0), -1.0]  # no boxes of 'b'
    assert type(mean_ap_metrics(2)["map"]).to is torchmetrics.Metric.to  # no private-attribute tricks


# --- augmentation keeps boxes on their objects ------------------------------------------------------
def _painted(side: int, boxes: list[list[int]]) -> torch.Tensor:
    """Black image with each box's pixels painted white (the box is exactly the object)."""
    image = torch.zeros(3, side, side, dtype=torch.uint8)
    for x1, y1, x2, y2 in boxes:
        image[:, y1:y2, x1:x2] = 255
    return image


def _object_box(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


@pytest.mark.parametrize("jitter", [0.0, 0.3])
def test_augmented_boxes_stay_on_their_objects(jitter):
    """Flips (and zoom + shift) move image and boxes together: each box still frames its painted object."""
    from dlkit_recipes.vision_detection.data import transforms
    from torchvision import tv_tensors

    recipe = _recipe("data.vflip=true", "data.color_jitter=0", f"data.scale_jitter={jitter}")
    transform = transforms(recipe.cfg["data"], 64, train=True)
    boxes = [[4, 6, 20, 30], [40, 44, 60, 52]]
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = transform(
            {
                "image": tv_tensors.Image(_painted(64, boxes)),
                "labels": torch.tensor([1, 2]),
                "boxes": tv_tensors.BoundingBoxes(
                    torch.tensor(boxes, dtype=torch.float32), format="XYXY", canvas_size=(64, 64)
                ),
            }
        )
        white = out["image"].mean(0) > 0.5
        assert len(out["boxes"]) == len(out["labels"]) >= 1
        for box in out["boxes"].tolist():
            x1, y1, x2, y2 = (round(v) for v in box)
            inside = white[y1:y2, x1:x2]
            assert inside.float().mean() > 0.9, (seed, box)
            if jitter == 0:  # flips are exact: the painted object is exactly the box
                assert inside.all() and white.sum() == sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes)
                seen.add((x1, y1))
            else:
                region = torch.zeros_like(white)
                region[max(0, y1 - 2) : y2 + 2, max(0, x1 - 2) : x2 + 2] = True
                iou = box_iou(
                    torch.tensor([box]), torch.tensor([_object_box(white & region)], dtype=torch.float)
                )
                assert iou.item() > 0.85, (seed, box)
    if jitter == 0:
        assert len(seen) >= 5  # boxes seen unflipped, h-flipped, v-flipped and both


# --- bad input --------------------------------------------------------------------------------------
def test_bad_boxes_are_dropped_counted_and_reported_not_fatal(cli, tmp_path, scenes):
    _copy_images(scenes, tmp_path / "images", [f"scene_{i:04d}.jpg" for i in range(1, 21)])
    data = json.loads((scenes / "train.json").read_text())
    data["images"] = data["images"][:20]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] <= 20]
    n_good = len(data["annotations"])
    data["images"].append(dict(data["images"][0]))  # duplicate image id
    data["images"][4].update(width=256, height=256)  # a resized copy of the annotated image
    data["annotations"] += [
        {"id": 900, "image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 5]},  # zero area
        {"id": 901, "image_id": 1, "category_id": 1, "bbox": [200, 200, 10, 10]},  # wholly outside
        {"id": 902, "image_id": 2, "category_id": 2, "bbox": [100, 100, 60, 20]},  # sticks out: clipped, kept
        {"id": 903, "image_id": 2, "category_id": 99, "bbox": [10, 10, 10, 10]},  # unknown category
        {"id": 904, "image_id": 3, "category_id": 1, "bbox": [1, 2, "x"]},  # malformed
    ]
    _coco(tmp_path / "annotations.json", data["images"], data["annotations"], data["categories"])

    res = cli("check", "vision-detection", "--data", tmp_path, "--json")
    assert res.code == 0, res.err
    rows = {f["check"]: f for f in json.loads(res.out)["findings"]}
    for kind in (
        "box dropped: zero or negative area",
        "box dropped: outside the image",
        "box clipped to the image",
        "box dropped: unknown category id",
        "box dropped: malformed",
        "duplicate image id (later entry ignored)",
        "image size differs from its annotation (boxes rescaled)",
    ):
        assert rows[kind]["severity"] == "warning" and rows[kind]["message"].startswith("1 (e.g."), kind
    assert "annotation 900" in rows["box dropped: zero or negative area"]["message"]
    assert "category_id 99" in rows["box dropped: unknown category id"]["message"]
    assert rows["class balance"]["severity"] in ("ok", "warning")
    assert "train: circle" in rows["class balance"]["message"]

    boxes = read_boxes(tmp_path, BoxReport())["all"]
    assert sum(len(im.boxes) for im in boxes.images) == n_good + 1
    res = cli(
        "train", "vision-detection", "--data", tmp_path, "--out", tmp_path / "run", "train.epochs=1", *FAST
    )
    assert res.code == 0, res.err
    assert "box dropped: outside the image" in res.err and "warning" in res.err


def test_missing_images_are_skipped_up_to_the_limit(cli, tmp_path, scenes):
    _copy_images(scenes, tmp_path / "images", [f"scene_{i:04d}.jpg" for i in range(2, 29)])
    shutil.copy(scenes / "train.json", tmp_path / "annotations.json")  # scene_0001.jpg is missing
    res = cli("check", "vision-detection", "--data", tmp_path, "--json")
    rows = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert "scene_0001.jpg" in rows["missing image file"]["message"]
    for i in range(2, 12):
        (tmp_path / "images" / f"scene_{i:04d}.jpg").unlink()
    expect_user_error(
        cli("train", "vision-detection", "--data", tmp_path),
        "11 of 28 images",
        "data.max_bad_fraction",
        "data.image_dir",
    )


@pytest.mark.parametrize(
    "content, says",
    [
        ("{not json", ["is not valid JSON", "line 1"]),
        ('[{"id": 1}]', ["holds a JSON list"]),
        ('{"images": [], "categories": []}', ["lacks the key(s) annotations"]),
        (
            '{"images": [{"id": 1}], "annotations": [], "categories": []}',
            ["image #0 lacks the key(s) file_name"],
        ),
        ('{"images": [], "annotations": [], "categories": []}', ["lists no images"]),
    ],
)
def test_broken_coco_file_is_refused_by_name(cli, tmp_path, content, says):
    (tmp_path / "annotations.json").write_text(content)
    expect_user_error(
        cli("train", "vision-detection", "--data", tmp_path / "annotations.json"), "annotations.json", *says
    )


def test_annotation_without_bbox_names_the_annotation(cli, tmp_path, scenes):
    data = json.loads((scenes / "train.json").read_text())
    del data["annotations"][3]["bbox"]
    path = _coco(tmp_path / "train.json", data["images"], data["annotations"], data["categories"])
    res = cli("check", "vision-detection", "--data", path, "--json")
    assert res.code == 2
    fatal = json.loads(res.out)["findings"][0]
    assert fatal["severity"] == "fatal" and "annotation #3 lacks the key(s) bbox" in fatal["message"]
    expect_user_error(cli("train", "vision-detection", "--data", path), "annotation #3 lacks the key(s) bbox")


@pytest.fixture
def yolo_folder(tmp_path, scenes) -> Path:
    folder = tmp_path / "yolo"
    _copy_images(scenes, folder / "images", ["scene_0001.jpg", "scene_0002.jpg"])
    (folder / "labels").mkdir()
    (folder / "labels" / "scene_0001.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "classes.txt").write_text("circle\nsquare\n")
    return folder


@pytest.mark.parametrize(
    "line, says",
    [
        ("1 0.5 0.5 0.2", ["has 4 fields, expected 5", "class x_center y_center width height"]),
        ("5 0.5 0.5 0.2 0.2", ["class index 5 is out of range", "lists 2: 0-1"]),
        ("a b c d e", ["is not numbers"]),
    ],
)
def test_bad_yolo_line_names_file_and_line(cli, yolo_folder, line, says):
    (yolo_folder / "labels" / "scene_0002.txt").write_text(f"0 0.3 0.3 0.1 0.1\n{line}\n")
    expect_user_error(
        cli("train", "vision-detection", "--data", yolo_folder), "scene_0002.txt' line 2", *says
    )


def test_yolo_without_class_names_or_images(cli, yolo_folder, tmp_path):
    (yolo_folder / "classes.txt").unlink()
    expect_user_error(
        cli("train", "vision-detection", "--data", yolo_folder), "no class names file", "classes.txt"
    )
    (yolo_folder / "classes.txt").write_text("circle\nsquare\n")
    for image in (yolo_folder / "images").iterdir():
        image.unlink()
    expect_user_error(cli("train", "vision-detection", "--data", yolo_folder), "no images in")
    (tmp_path / "empty").mkdir()
    expect_user_error(cli("train", "vision-detection", "--data", tmp_path / "empty"), "is empty")


def test_info_tells_the_one_loss_detectors_take_and_others_are_refused(cli):
    res = cli("info", "vision-detection")
    assert res.code == 0, res.err
    line = next(x for x in res.out.splitlines() if x.strip().startswith("name: detector"))
    assert "[detector]" in line and "cross_entropy" not in line
    assert "out_dir" not in res.out and "draw:" in res.out
    expect_user_error(cli("train", "vision-detection", "loss.name=cross_entropy"), "loss.name", "detector")
    expect_user_error(cli("train", "vision-detection", "loss.label_smoothing=0.1"), "loss.label_smoothing")


# --- torchvision detectors -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "ssdlite320_mobilenet_v3_large",
        *(
            pytest.param(n, marks=pytest.mark.slow)  # ResNet-50 backbones: seconds per step on a CPU
            for n in ("fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn")
        ),
    ],
)
def test_torchvision_detectors_train_and_detect_through_the_step(name):
    """Random init with the data's classes + background; train gives a loss, val/test detections."""
    recipe = _recipe(f"model.name={name}")
    state = {"classes": ["a", "b", "c"], "image_size": 64}
    model = recipe.build_model(state)
    batch = {
        "image": torch.rand(2, 3, 64, 64),
        "boxes": [torch.tensor([[5.0, 5, 30, 40]]), torch.zeros(0, 4)],
        "labels": [torch.tensor([3]), torch.zeros(0, dtype=torch.int64)],
    }
    model.train()
    loss = recipe.step(model, batch, "train")["loss"]
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    model.eval()
    with torch.inference_mode():
        out = recipe.step(model, batch, "val")
    assert len(out["preds"]) == len(out["target"]) == 2
    metric = recipe.metrics(state)["map_50"]
    metric.update(out["preds"], out["target"])
    assert 0 <= float(metric.compute()) <= 1


def test_backbone_weights_are_read_for_a_new_run_only(tmp_path, capsys):
    import torchvision
    from dlkit_recipes.vision_detection.model import load_backbone

    from dlkit.errors import UserError

    weights = torchvision.models.mobilenet_v3_large().state_dict()
    torch.save(weights, tmp_path / "mnv3.pth")
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    recipe = _recipe(f"model.name={name}", f"model.backbone_weights={tmp_path / 'mnv3.pth'}")
    state = {"classes": ["a", "b"], "image_size": 64}

    recipe.setup(state, fresh=True)  # a new run: read once, warned once about the lr
    first, second = recipe.build_model(state), recipe.build_model(state)
    for model in (first, second):
        assert torch.equal(model.backbone.body["0"][0].weight, weights["features.0.0.weight"])
    err = capsys.readouterr().err
    assert err.count("is high for") == 1 and err.count("backbone weights") == 1

    (tmp_path / "mnv3.pth").unlink()  # evaluate/predict/resume never touch the file
    recipe = _recipe(f"model.name={name}", f"model.backbone_weights={tmp_path / 'mnv3.pth'}")
    recipe.setup(state, fresh=False)
    model = recipe.build_model(state)
    assert not torch.equal(model.backbone.body["0"][0].weight, weights["features.0.0.weight"])
    assert "is high for" not in capsys.readouterr().err
    with pytest.raises(UserError, match="does not exist"):
        _recipe(f"model.backbone_weights={tmp_path / 'mnv3.pth'}").setup(state, fresh=True)
    with pytest.raises(UserError, match="re-initialise the backbone"):  # init runs after build_model
        _recipe(f"model.backbone_weights={tmp_path / 'x.pth'}", "model.init=kaiming").setup(state, fresh=True)

    assert not any(k.startswith("0.") for k in load_backbone(first, weights))
    with pytest.raises(UserError, match="torchvision Faster R-CNN"):
        load_backbone(torch.nn.Linear(2, 2), weights)


@pytest.mark.slow
def test_default_config_reaches_a_high_map_on_the_sample_data(cli, tmp_path):
    """The shipped default (60 epochs) finds the shapes: mAP@0.5 well above 0.8 (about 3 min on 2 cores)."""
    result = train_ok(cli, "vision-detection", tmp_path / "run")
    assert result["metrics"]["map_50"] > 0.8 and result["beats_baseline"] is True
