"""Checkpoints written before the methods had rooms of their own (format tag `jepa_nb.ijepa/1`, written by the code of
commit cb5e46b with `train_ijepa`) still load with today's `load_model`, into the same method, with the same encoder
outputs; the old names still work with a FutureWarning; a checkpoint written today carries the new tag.

tests/data/ckpt_cb5e46b/: one tiny run per method (ViT 16x1, 2 steps on mnist5k) and `embeddings.json`, the first four
pooled features of each evaluated encoder on a fixed input, computed by that old code."""
import json
import warnings
from pathlib import Path

import pytest
import torch

from jepa_nb.checkpoint import CKPT_FORMAT, load_checkpoint, load_model, save_checkpoint
from jepa_nb.methods import METHODS, PretrainConfig

OLD = Path(__file__).resolve().parent / "data" / "ckpt_cb5e46b"
X = torch.linspace(-1, 1, 2 * 32 * 32).view(2, 1, 32, 32)


@pytest.mark.parametrize("method", ["ijepa", "lejepa", "mae"])
def test_a_checkpoint_written_by_the_old_code_loads(method):
    assert torch.load(OLD / f"{method}.pt", weights_only=True)["format"] == "jepa_nb.ijepa/1"
    model, cfg, ckpt = load_model(OLD / f"{method}.pt")
    assert isinstance(model, METHODS[method]) and cfg.method == method and ckpt["step"] == 2
    model.eval()
    with torch.no_grad(): got = model.target_encoder(X).mean(1)[:, :4]
    want = torch.tensor(json.loads((OLD / "embeddings.json").read_text())[method])
    assert torch.allclose(got, want, atol=1e-6), (got, want)


def test_a_new_checkpoint_says_jepa_nb_and_round_trips(tmp_path):
    model, cfg, _ = load_model(OLD / "lejepa.pt")
    path = save_checkpoint(tmp_path / "new.pt", model, None, 2, cfg, total_steps=2)
    ck = load_checkpoint(path)
    assert ck["format"] == CKPT_FORMAT and "ijepa" not in CKPT_FORMAT and CKPT_FORMAT.startswith("jepa_nb.")
    again, cfg2, _ = load_model(path)
    assert cfg2 == cfg and all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


@pytest.mark.parametrize("old,new", [("train_ijepa", "pretrain"), ("IJEPAConfig", "PretrainConfig"), ("load_ijepa", "load_model"),
                                     ("ijepa_loss", "ijepa_loss"), ("build_encoder", "build_encoder")])
def test_old_names_warn_and_point_to_the_new_ones(old, new):
    import importlib
    import jepa_nb.train as train
    homes = {"pretrain": "jepa_nb.train", "PretrainConfig": "jepa_nb.methods", "load_model": "jepa_nb.checkpoint",
             "ijepa_loss": "jepa_nb.ijepa", "build_encoder": "jepa_nb.vit"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = getattr(train, old)
    assert obj is getattr(importlib.import_module(homes[new]), new)
    assert len(caught) == 1 and issubclass(caught[0].category, FutureWarning) and old in str(caught[0].message)


def test_the_method_name_is_looked_up_only_in_the_registry():
    root = Path(__file__).resolve().parents[1] / "jepa_nb"
    hits = [f"{p.name}:{i}" for p in root.rglob("*.py") for i, line in enumerate(p.read_text().splitlines(), 1)
            if "cfg.method ==" in line or "cfg.method !=" in line or ".method in (" in line]
    assert not hits, f"branches on the method name outside the registry: {hits}"
    assert set(PretrainConfig.__dataclass_fields__["method"].type.__args__) == set(METHODS)


def _sizes():
    root = Path(__file__).resolve().parents[1] / "jepa_nb"
    return {p.relative_to(root).as_posix(): len(p.read_text().splitlines()) for p in root.rglob("*.py") if p.name != "_modidx.py"}


def test_the_loop_module_is_the_loop_only():
    sizes = _sizes()
    assert sizes["train.py"] <= 300, sizes["train.py"]
    rooms = ("ijepa.py", "lejepa.py", "mae.py", "vicreg.py", "methods.py", "checkpoint.py", "monitors.py", "api.py", "optim.py")
    assert all(sizes[r] <= 400 for r in rooms), {r: sizes[r] for r in rooms}


def test_no_module_over_400_lines():
    big = {k: v for k, v in _sizes().items() if v > 400}
    assert not big, f"modules over 400 lines: {big}"


def test_no_line_over_120_characters():
    "Except URLs and the start of `__all__`, which nbdev writes itself (line 1 too: keep descriptions short)."
    root = Path(__file__).resolve().parents[1] / "jepa_nb"
    long = {}
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if rel == "_modidx.py": continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            generated = line.startswith("__all__ = [")
            if len(line) > 120 and "http" not in line and not generated: long.setdefault(rel, []).append(i)
    assert not long, f"lines over 120 characters (wrap them in the notebooks): {long}"


def test_the_readme_front_door_runs_on_a_checkpoint():
    "The three lines on the README's first screen, as written, on a checkpoint of each method and raw 28 px digits."
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:60])
    assert "make main" in first_screen and "make test" in first_screen and "## Use a checkpoint" in first_screen
    block = readme.split("## Use a checkpoint", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "load_encoder(" in block and "embed(" in block and "jepa_score(" in block
    from jepa_nb.data import load_data
    images = load_data("mnist5k", "test", n=5).images                        # uint8 (5, 1, 28, 28); the models see 32 px
    for method in ("ijepa", "lejepa", "mae"):
        env = {"images": images}
        exec(block.replace("runs/reproduce-cpu/10_pretrain/checkpoint.pt", str(OLD / f"{method}.pt")), env)
        assert env["z"].shape == (5, env["encoder"].embed_dim) and env["s"].shape == (5,) and torch.isfinite(env["s"]).all()


@pytest.mark.parametrize("method", ["ijepa", "mae"])
def test_an_exported_encoder_loads_in_timm_with_the_same_outputs(method, tmp_path):
    "`export_encoder` writes safetensors that timm's own loader (and the course's timm_encoder) turns into the same encoder."
    import timm
    from jepa_nb.api import export_encoder, load_encoder
    from jepa_nb.backbones import timm_encoder
    path, kw = export_encoder(OLD / f"{method}.pt", tmp_path / "enc.safetensors")
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["timm_kwargs"] == kw and len(info["mean"]) == kw["in_chans"]
    encoder, _ = load_encoder(OLD / f"{method}.pt")
    tm = timm.create_model(info["timm_model"], pretrained=True, num_classes=0, pretrained_cfg_overlay=dict(file=str(path)), **kw).eval()
    x = torch.randn(3, kw["in_chans"], kw["img_size"], kw["img_size"])
    with torch.no_grad():
        assert torch.allclose(tm.forward_features(x), encoder(x), atol=1e-6)
        assert torch.allclose(timm_encoder(info["timm_model"], checkpoint_path=path, **kw)(x), encoder(x).mean(1), atol=1e-6)
