"""Bad input data (issue 17), with real files: 16-bit and other PNG/TIFF modes written with Pillow, float and wide-integer
parquet written with pyarrow, a folder mixing grey/colour and sizes used through experiment parameters, and datasets
smaller than one batch. Each case loads the correct 8-bit pixels or fails with one line naming the file, the column or
the parameter and what to pass instead."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from jepa_nb.config import ConfigError
from jepa_nb.data import load_data
from jepa_nb.dataparams import check_batch_fits, check_data_params, count_images, load_options

ROOT = Path(__file__).resolve().parents[1]


def eight_bits(v16: np.ndarray) -> np.ndarray:
    "round(v * 255 / 65535) in exact integer arithmetic (v * 255 / 65535 is never a tie: 65535 is odd)."
    return (v16.astype(np.int64) * 255 + 32767) // 65535


def folder(root: Path, images: dict[str, list], ext: str = "png") -> str:
    "A class-per-sub-folder image folder holding `images` ({class: [PIL image, ...]}); its load_data name."
    for cls, ims in images.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(ims): im.save(root / cls / f"{i}.{ext}")
    return f"folder:{root}"


def parquet(path: Path, images: np.ndarray, labels=None) -> str:
    "A parquet file written with pyarrow: an `image` column of nested lists in the array's own dtype, a `label` column."
    col = pa.array(images.tolist(), type=pa.list_(pa.list_(pa.from_numpy_dtype(images.dtype))))
    pq.write_table(pa.table({"image": col, "label": pa.array(labels if labels is not None else [0, 1] * (len(images) // 2))}), path)
    return f"parquet:{path}"


# --- 16-bit greyscale PNGs: scaled, not clipped --------------------------------------------------------------------------

def test_a_folder_of_16_bit_pngs_loads_scaled_to_8_bits(tmp_path):
    rng = np.random.default_rng(0)
    v = [rng.integers(0, 65536, (20, 24)).astype(np.uint16) for _ in range(4)]
    v[0][0, :2] = (0, 65535)                                                 # both ends of the range
    name = folder(tmp_path / "sixteen", {"a": [Image.fromarray(x) for x in v[:2]], "b": [Image.fromarray(x) for x in v[2:]]})
    assert Image.open(tmp_path / "sixteen" / "a" / "0.png").mode == "I;16"      # Pillow's 16-bit greyscale mode
    d = load_data(name)
    assert d.shape == (1, 20, 24)
    got = sorted(d.images[:, 0].numpy().astype(np.int64).tolist())
    assert got == sorted(eight_bits(x).tolist() for x in v)                 # every pixel: round(v * 255 / 65535)
    assert len(np.unique(d.images)) > 200                                    # not binarised to {0, 255}
    assert {0, 255} <= set(np.unique(d.images).tolist())


def test_16_bit_grey_joins_colour_images_through_mode_rgb(tmp_path):
    v = np.full((8, 8), 30000, np.uint16)
    name = folder(tmp_path / "mix16", {"deep": [Image.fromarray(v)], "colour": [Image.fromarray(np.full((8, 8, 3), 9, np.uint8))]})
    with pytest.raises(ValueError, match=r"mixes greyscale and colour.*-p image_mode=L"):
        load_data(name)
    d = load_data(name, mode="RGB")
    deep = d.images[d.labels == d.classes.index("deep")]
    assert d.shape == (3, 8, 8) and (deep == int(eight_bits(np.array(30000)))).all()


# --- the neighbours: other modes and bit depths --------------------------------------------------------------------------

G = np.arange(64, dtype=np.int64).reshape(8, 8)
RGB8 = np.stack([G * 4, 255 - G * 4, np.full_like(G, 7)], -1).astype(np.uint8)


def _palette():
    im = Image.fromarray(RGB8).quantize(colors=16)
    pal = np.array(im.getpalette()[:16 * 3]).reshape(16, 3)
    return im, pal[np.asarray(im)].transpose(2, 0, 1)                        # expected: each index looked up by hand


def _cases():
    pal_im, pal_want = _palette()
    f = (G / 63).astype(np.float32)
    return {  # mode -> (image, file type, expected uint8 (C, H, W) or (H, W))
        "1": (Image.fromarray(G % 3 == 0), "png", (G % 3 == 0) * 255),
        "P": (pal_im, "png", pal_want),
        "LA": (Image.merge("LA", [Image.fromarray((G * 4).astype(np.uint8)), Image.new("L", (8, 8), 200)]), "png", G * 4),
        "RGBA": (Image.fromarray(np.concatenate([RGB8, np.full((8, 8, 1), 3, np.uint8)], -1)), "png", RGB8.transpose(2, 0, 1)),
        "CMYK": (Image.fromarray(RGB8).convert("CMYK"), "tif", np.asarray(Image.fromarray(RGB8).convert("CMYK").convert("RGB")).transpose(2, 0, 1)),
        "I;16B": (Image.frombytes("I;16B", (8, 8), (G * 1000).astype(">u2").tobytes()), "tif", eight_bits(G * 1000)),
        "I": (Image.fromarray((G * 1000).astype(np.int32)), "tif", eight_bits(G * 1000)),
        "F": (Image.fromarray(f), "tif", np.round(f.astype(np.float64) * 255)),
        "F 0..255": (Image.fromarray((f * 200).astype(np.float32)), "tif", np.round(f * 200)),
    }


@pytest.mark.parametrize("mode", list(_cases()))
def test_each_mode_loads_its_correct_8_bits(mode, tmp_path):
    im, ext, want = _cases()[mode]
    assert im.mode == mode.split()[0]
    d = load_data(folder(tmp_path / "m", {"a": [im], "b": [im]}, ext))
    assert Image.open(next((tmp_path / "m" / "a").iterdir())).mode == im.mode       # the file kept the mode
    got = d.images[0].numpy().astype(np.int64)
    assert np.array_equal(got, np.broadcast_to(want, got.shape)), (mode, got[0, :2], np.broadcast_to(want, got.shape)[0, :2])


@pytest.mark.parametrize("what,image,ext,kw,words", [
    ("32-bit ints below 0", Image.fromarray((G - 5).astype(np.int32)), "tif", {}, ["beyond 16 bits", "8-bit or 16-bit"]),
    ("32-bit ints past 16 bits", Image.fromarray((G * 2000).astype(np.int32)), "tif", {}, ["[0, 126000]", "beyond 16 bits"]),
    ("float NaN", Image.fromarray(np.where(G == 3, np.nan, 0.5).astype(np.float32)), "tif", {}, ["NaN", "replace them"]),
    ("float in [-1, 1]", Image.fromarray((G / 32 - 1).astype(np.float32)), "tif", {}, ["outside both [0, 1] and [0, 255]", "rescale"]),
    ("LAB to grey", Image.new("LAB", (8, 8)), "tif", {"mode": "L"}, ["PIL mode 'LAB'", "cannot convert", "save it as"]),
])
def test_pixels_that_are_not_8_bit_images_are_refused_naming_the_file(what, image, ext, kw, words, tmp_path):
    name = folder(tmp_path / "bad", {"a": [image], "b": [image]}, ext)
    with pytest.raises(ValueError) as e:
        load_data(name, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "bad") in msg and f".{ext}" in msg, msg         # one line, the file named
    assert all(w in msg for w in words), (what, msg)


# --- parquet arrays: floats, 16 bits, wide integers ----------------------------------------------------------------------

def test_float_parquet_in_0_1_is_scaled_to_0_255(tmp_path):
    f = np.random.default_rng(1).random((6, 10, 10)).astype(np.float32)
    d = load_data(parquet(tmp_path / "f01.parquet", f))
    assert np.array_equal(d.images[:, 0].numpy(), np.round(f * 255).astype(np.uint8))
    assert d.images.float().mean() > 100                                    # not the black 0/1 images of before


def test_float_parquet_in_0_255_is_rounded_and_uint16_is_scaled(tmp_path):
    f = np.random.default_rng(2).uniform(0, 255, (4, 6, 6)).astype(np.float32)
    f[0, 0, 0] = 254.6
    d = load_data(parquet(tmp_path / "f255.parquet", f))
    assert np.array_equal(d.images[:, 0].numpy(), np.round(f).astype(np.uint8)) and d.images.max() == 255
    u = np.random.default_rng(3).integers(0, 65536, (4, 6, 6)).astype(np.uint16)
    d = load_data(parquet(tmp_path / "u16.parquet", u))
    assert np.array_equal(d.images[:, 0].numpy().astype(np.int64), eight_bits(u))
    i8 = np.random.default_rng(4).integers(0, 256, (4, 6, 6)).astype(np.int64)   # 8-bit values stored as int64: kept
    assert np.array_equal(load_data(parquet(tmp_path / "i64.parquet", i8)).images[:, 0].numpy(), i8.astype(np.uint8))


@pytest.mark.parametrize("what,array,words", [
    ("floats in [-1, 1]", np.linspace(-1, 1, 4 * 36, dtype=np.float32).reshape(4, 6, 6), ["[-1, 1]", "outside both [0, 1] and [0, 255]"]),
    ("floats past 255", np.full((4, 6, 6), 300.0, np.float32), ["[300, 300]", "rescale them to [0, 1]"]),
    ("NaN", np.where(np.arange(4 * 36).reshape(4, 6, 6) == 5, np.nan, 0.5).astype(np.float32), ["NaN", "replace them"]),
    ("12-bit values as int32", np.full((4, 6, 6), 4095, np.int32), ["int32 pixels in [4095, 4095]", "beyond 8 bits", "uint16"]),
    ("negative int16", np.full((4, 6, 6), -3, np.int16), ["beyond 8 bits"]),
])
def test_parquet_values_that_are_not_pixels_are_refused_naming_column_and_file(what, array, words, tmp_path):
    with pytest.raises(ValueError) as e:
        load_data(parquet(tmp_path / "bad.parquet", array))
    msg = str(e.value)
    assert "\n" not in msg and "column 'image'" in msg and str(tmp_path / "bad.parquet") in msg, msg
    assert all(w in msg for w in words), (what, msg)


# --- a folder of mixed grey / colour images and sizes, through the experiment parameters ---------------------------------

@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> str:
    "train/ and test/ of two classes of digits, every third saved in colour, every fourth at 32x30."
    root = tmp_path_factory.mktemp("mixed")
    digits = load_data("mnist5k", "all", n=200)
    for k in range(200):
        split, i = ("train", k) if k < 160 else ("test", k - 160)
        im = Image.fromarray(digits.images[k, 0].numpy())
        im = im.convert("RGB") if i % 3 == 0 else im
        im = im.resize((32, 30)) if i % 4 == 0 else im
        (root / split / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        im.save(root / split / f"c{k % 2}" / f"{i}.png")
    return f"folder:{root}"


def test_a_mixed_folder_names_the_parameters_and_loads_with_them(mixed):
    from jepa_nb.methods import PretrainConfig, config_fields
    with pytest.raises(ValueError, match=r"mixes greyscale and colour.*\(an experiment: -p image_mode=L or -p image_mode=RGB\)"):
        load_data(mixed)
    with pytest.raises(ValueError, match=r"2 different sizes.*pass image_size=28 .*\(an experiment: -p image_size=28\)"):
        load_data(mixed, mode="L")
    params = {"dataset": mixed, "n_train": 0, "image_mode": "L", "image_size": 28}          # as an experiment's parameters
    cfg = PretrainConfig.from_params(config_fields(params))
    check_data_params({**params, "batch_size": 64})
    d = load_data(cfg.dataset, "train", **load_options(cfg.dataset, cfg.image_mode, cfg.image_size))
    assert d.shape == (1, 28, 28) and len(d) == 160 and d.classes == ["c0", "c1"]
    assert count_images(mixed) == 160 and count_images(mixed, "test") == 40
    for bad, word in [({"image_mode": "L", "dataset": "mnist5k"}, "leave it empty"), ({"image_mode": "grey"}, "'L'"),
                      ({"image_mode": "", "image_size": 64, "dataset": "digits"}, "img_size"), ({"image_size": -1}, ">= 0")]:
        with pytest.raises(ConfigError, match=word):
            PretrainConfig.from_params(config_fields({**params, **bad}))
    assert PretrainConfig.from_params({}).image_mode == "" and PretrainConfig().image_size == 0   # old configs: the defaults


def test_a_real_smoke_run_pretrains_on_a_mixed_folder_with_the_parameters(mixed, tmp_path):
    d = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "jepa_nb.runner", "run", "pretrain", "--tier", "smoke", "--run-dir", d, "-q",
                        "-p", f"dataset={mixed}", "-p", "image_mode=L", "-p", "image_size=28"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg, res = json.loads((d / "config.json").read_text()), json.loads((d / "results.json").read_text())
    assert (cfg["image_mode"], cfg["image_size"], cfg["dataset"]) == ("L", 28, mixed)
    assert res["steps"] == 4 and 0 < res["linear_acc"] <= 1                # 160 images at batch 64, 2 epochs


def test_eval_transform_of_a_mixed_folder_run_reloads_its_data_with_the_parameters(mixed):
    from jepa_nb.checkpoint import eval_transform
    from jepa_nb.methods import PretrainConfig
    tf = eval_transform(PretrainConfig(dataset=mixed, image_mode="L", image_size=28, img_size=32))
    assert len(tf.mean) == 1 and tf.size == 32      # grey, as the run read the folder


# --- fewer images than one batch ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hundred(tmp_path_factory) -> str:
    "A folder of 100 real PNGs in two classes, plus a hidden file and a text file that the imagefolder builder skips."
    root = tmp_path_factory.mktemp("hundred")
    digits = load_data("mnist5k", n=100)
    name = folder(root, {c: [Image.fromarray(digits.images[i, 0].numpy()) for i in range(k, 100, 2)] for k, c in enumerate("ab")})
    Image.fromarray(digits.images[0, 0].numpy()).save(root / "a" / ".hidden.png")
    (root / "a" / "notes.txt").write_text("not an image")
    return name


def test_count_images_matches_what_loads(hundred):
    assert count_images(hundred) == len(load_data(hundred)) == 100
    assert count_images("mnist5k") == 4000 and count_images("cifar10") is None


@pytest.mark.parametrize("params,words", [
    ({"batch_size": 128}, ["100 training images are fewer than one batch (batch_size 128", "-p batch_size=100", "add images"]),
    ({"batch_size": 10 ** 9}, ["batch_size 1000000000", "-p batch_size=100"]),
])
def test_a_folder_smaller_than_one_batch_is_refused_before_loading(hundred, params, words):
    with pytest.raises(ConfigError) as e:
        check_data_params({"dataset": hundred, "n_train": 0, **params})
    assert all(w in str(e.value) for w in words) and f"dataset '{hundred}': 100" in str(e.value), str(e.value)


def test_n_train_or_batch_size_too_large_for_the_builtin_data():
    with pytest.raises(ConfigError, match=r"1 training image is fewer than one batch \(batch_size 128; dataset 'mnist5k': 4000, "
                                          r"n_train: 1\); lower batch_size to 1 or less \(-p batch_size=1\) or raise n_train to at "
                                          r"least 128 \(-p n_train=128; 0: all\)"):
        check_data_params({"dataset": "mnist5k", "n_train": 1, "batch_size": 128})
    with pytest.raises(ConfigError, match=r"4000 training images .* lower batch_size to 4000 or less \(-p batch_size=4000\)$"):
        check_data_params({"dataset": "mnist5k", "n_train": 0, "batch_size": 10 ** 9})
    check_batch_fits("mnist5k", 128, n_train=128)                            # exactly one batch is enough


def test_the_training_loop_says_the_same_instead_of_nothing_to_do(hundred):
    from jepa_nb.methods import PretrainConfig
    from jepa_nb.train import pretrain
    tiny = dict(embed_dim=16, depth=1, num_heads=2, pred_emb_dim=8, pred_depth=1, epochs=1, device="cpu")
    with pytest.raises(ConfigError, match=r"100 training images .*-p batch_size=100\) or add images to the dataset"):
        pretrain(PretrainConfig(dataset=hundred, batch_size=128, **tiny), load_data(hundred), progress=False)
    with pytest.raises(ConfigError, match=r"n_train: 1\); lower batch_size to 1 or less \(-p batch_size=1\) or raise n_train to at least 128"):
        pretrain(PretrainConfig(n_train=1, batch_size=128, **tiny), load_data("mnist5k"), progress=False)


def test_the_cli_refuses_a_folder_smaller_than_one_batch_before_a_kernel_starts(hundred, tmp_path):
    "From the folder the user stands in, with a relative path: one line, exit 2, no run folder."
    import subprocess, sys
    from pathlib import Path
    where = Path(hundred.removeprefix("folder:"))
    r = subprocess.run([str(Path(sys.executable).parent / "jepa-nb"), "run", "pretrain", "--tier", "smoke", "--runs-root",
                        str(tmp_path / "runs"), "-p", f"dataset=folder:{where.name}", "-p", "batch_size=128"],
                       cwd=where.parent, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "cannot start" in line and "100 training images are fewer than one batch" in line and "-p batch_size=100" in line
    assert "Traceback" not in r.stderr and not (tmp_path / "runs").exists()
