"""Agent suites with the baselines and simple real predictors: saliency, reasoning, evaluator, refinement loop."""

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from scipy.ndimage import gaussian_filter, sobel

from rlkit.data import BlemishRecord, Region, build_blemish, dataset_to_records
from rlkit.eval import (
    CentreBias,
    FullReferenceEvaluator,
    LoopSample,
    MajorityReasoner,
    MOSSample,
    ReferenceReasoner,
    SpectralResidual,
    UniformSaliency,
    run_evaluator,
    run_loop,
    run_reasoning,
    run_saliency,
)
from rlkit.eval.reasoning import TextMetrics, samples_from_records
from rlkit.eval.saliency import SaliencyPredictor, _samples_from, spectral_residual
from rlkit.metrics import saliency_metrics
from rlkit.ops import EditProgram, apply_program, to_pil, to_tensor


@pytest.fixture(scope="module")
def blemish_records():
    return dataset_to_records(build_blemish(6, 0, size=64), BlemishRecord)


class EdgeEnergy:
    """A simple real predictor: blurred gradient magnitude of the grey image (distortions add structure)."""

    map_names = ("saliency",)
    name = "edge energy"

    def predict_maps(self, images, **_):
        out = []
        for im in images:
            g = np.asarray(im.convert("L"), dtype=np.float64)
            e = gaussian_filter(np.hypot(sobel(g, 0), sobel(g, 1)), 3)
            out.append((e / max(e.max(), 1e-12)).astype(np.float32))
        return {"saliency": np.stack(out)}


def test_saliency_suite_baselines_and_a_predictor(blemish_records, tmp_path):
    samples = _samples_from(blemish_records)
    preds = [UniformSaliency(), CentreBias(), SpectralResidual(), EdgeEnergy()]
    assert all(isinstance(p, SaliencyPredictor) for p in preds)
    recs = run_saliency(samples, preds, tmp_path, batch_size=4, progress=False, overlays=2)
    by = {(r["system"], r["id"]): r["saliency"] for r in recs}
    for s in samples:
        u = by[("uniform", s.id)]
        assert u["nss"] == 0.0 and u["cc"] == 0.0  # a constant map carries no information (hand value)
        e = by[("edge energy", s.id)]
        direct = saliency_metrics(EdgeEnergy().predict_maps([s.image])["saliency"], s.gt["saliency"][None])
        assert e["kld"] == pytest.approx(direct["kld"][0]) and e["auc_judd"] == pytest.approx(direct["auc_judd"][0])
    report = (tmp_path / "report.md").read_text()
    assert "AUC-Judd ↑" in report and "KLD ↓" in report and "| spectral residual |" in report
    assert (tmp_path / "overlays.png").stat().st_size > 0


def test_spectral_residual_pops_out_the_odd_patch():
    # Hou & Zhang's point: a repeated pattern is predictable in the log spectrum; the odd patch is not.
    yy, xx = np.mgrid[0:96, 0:96]
    img = 0.5 + 0.3 * np.sin(xx * 2 * np.pi / 6)
    img[60:70, 20:30] = 0.95
    m = spectral_residual(Image.fromarray((img * 255).astype(np.uint8)).convert("RGB"))
    assert m.shape == (96, 96) and m.min() == 0.0 and m.max() == 1.0
    assert m[60:70, 20:30].mean() > 3 * m[10:40, 50:90].mean()


def test_reasoning_suite_reference_majority_and_word2vec(blemish_records, tmp_path):
    from gensim.models import KeyedVectors, Word2Vec

    samples = samples_from_records(blemish_records)
    sentences = [d.description.lower().split() for s in samples for d in s.reference] * 20
    w2v = Word2Vec(sentences, vector_size=16, min_count=1, seed=0, workers=1, epochs=5)
    kv_path = tmp_path / "tiny.kv"
    w2v.wv.save(str(kv_path))
    metrics = TextMetrics(word2vec=kv_path, sentence_model=None)
    recs = run_reasoning(samples, [ReferenceReasoner(), MajorityReasoner(samples)], tmp_path / "out",
                         metrics=metrics, progress=False)
    ref = [r for r in recs if r["system"] == "reference"]
    assert all(r["accuracy"] == 1.0 and r["rouge"] == pytest.approx(1.0) and r["word2vec"] == pytest.approx(1.0)
               for r in ref)
    maj = MajorityReasoner(samples)
    expected = np.mean([np.mean([d.flaw_type == maj.flaw_type for d in s.reference]) for s in samples])
    got = np.mean([r["accuracy"] for r in recs if r["system"] == "majority"])
    assert got == pytest.approx(expected)
    # Word2Vec column: cosine of mean word vectors, by hand with the same KeyedVectors
    kv = KeyedVectors.load(str(kv_path))
    s0 = samples[0]
    d0 = s0.reference[0]
    a, b = kv[[w for w in maj.description.lower().split()]].mean(0), kv[d0.description.lower().split()].mean(0)
    assert metrics([maj.description], [d0.description])["word2vec"][0] == pytest.approx(
        float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-5)
    assert "Word2Vec ↑" in (tmp_path / "out" / "report.md").read_text()


def _edits(n=10, size=48):
    from rlkit.data import load_photo

    src = load_photo("astronaut", size=size)
    out = []
    for k in range(n):  # stronger exposure damage -> lower consistency, MOS made from the damage level
        prog = EditProgram({"exposure": 0.15 * (k + 1), "contrast": 5.0 * k})
        ed = to_pil(apply_program(to_tensor(src), prog))[0]
        mos = 90 - 6 * k
        out.append(MOSSample(f"e{k}", src, ed, "brighten slightly", (mos, mos - 3, mos + 2)))
    return out


def test_evaluator_suite_correlations_match_scipy(tmp_path):
    samples = _edits()
    summary = run_evaluator(samples, [FullReferenceEvaluator("ssim"), FullReferenceEvaluator("psnr")], tmp_path,
                            progress=False)
    pred = FullReferenceEvaluator("ssim").score([s.source for s in samples], [s.edited for s in samples], [""] * 10)
    mos = np.array([s.mos for s in samples])
    assert summary["SSIM"]["vc"]["srcc"] == pytest.approx(stats.spearmanr(pred[:, 2], mos[:, 2]).statistic)
    assert summary["SSIM"]["pq"]["plcc"] == pytest.approx(stats.pearsonr(pred[:, 0], mos[:, 0]).statistic)
    assert summary["SSIM"]["vc"]["srcc"] > 0.9  # more damage, lower SSIM and lower MOS
    assert "overall SRCC" in (tmp_path / "report.md").read_text()


class ExposureLoop:
    """A real loop from rlkit pieces: each turn edits the current image with the engine (half the remaining
    exposure towards a target), scored by a full-reference evaluator against the target; auto-stop when the
    score stops improving (EditRefiner's rule)."""

    def __init__(self, target, overshoot=False):
        self.target, self.overshoot = target, overshoot
        self.name = "overshooting loop" if overshoot else "exposure loop"
        self.judge = FullReferenceEvaluator("psnr")

    def run(self, image, *, source=None, instruction=None, prompt=None, max_turns=4):
        images, step = [image], 0.6
        for t in range(max_turns):
            step = step * (1.8 if self.overshoot and t >= 1 else 0.5)
            images.append(to_pil(apply_program(to_tensor(images[-1]), EditProgram({"exposure": step})))[0])
        scores = [float(s[0]) for s in self.judge.score([self.target] * len(images), images, [""] * len(images))]
        best = int(np.argmax(scores))
        stop = next((t for t in range(1, len(scores)) if scores[t] <= scores[t - 1]), len(scores)) - 1
        return {"images": images, "scores": scores, "stop_turn": min(stop, best) if stop >= 0 else 0}


def test_loop_suite_turns_and_auto_stop(tmp_path):
    from rlkit.data import load_photo

    target = load_photo("coffee", size=48)
    dark = to_pil(apply_program(to_tensor(target), EditProgram({"exposure": -1.0})))[0]
    samples = [LoopSample("s0", dark, source=target, instruction="brighten")]
    recs = run_loop(samples, [ExposureLoop(target), ExposureLoop(target, overshoot=True)], tmp_path, progress=False)
    good, over = recs
    assert good["turn0"] < good["turn1"] < good["turn2"]  # the edits approach the target
    assert over["auto_stop"] == max(over[f"turn{t}"] for t in range(5)) and over["auto_stop"] > over["turn4"]
    report = (tmp_path / "report.md").read_text()
    assert "| Turn 0 |" in report and "| Auto Stop |" in report
    with pytest.raises(ValueError, match="one score per image"):
        class Broken:
            name = "broken"

            def run(self, image, **_):
                return {"images": [image, image], "scores": [1.0]}

        run_loop(samples, [Broken()], tmp_path / "b", progress=False)


def test_saliency_suite_rejects_wrong_maps(tmp_path):
    rec = BlemishRecord(Image.new("RGB", (32, 32)), "p", [Region((16, 16), "local_artifact", "blur")], "x")

    class WrongShape:
        map_names = ("saliency",)
        name = "wrong"

        def predict_maps(self, images, **_):
            return {"saliency": np.zeros((len(images), 8, 8), np.float32)}

    with pytest.raises(ValueError, match="is \\(8, 8\\), the image is \\(32, 32\\)"):
        run_saliency(_samples_from([rec]), [WrongShape()], tmp_path, progress=False)


def test_saliency_nets_load_with_automodel_and_get_an_untrained_row(blemish_records, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

    from rlkit.eval import load_saliency_predictor

    class TinySalConfig(PretrainedConfig):
        model_type = "rlkit_test_tiny_saliency"

    class TinySalNet(PreTrainedModel):
        """A real (tiny) saliency net: two convolutions and a sigmoid, saved with save_pretrained."""

        config_class = TinySalConfig
        map_names = ("saliency",)

        def __init__(self, config):
            super().__init__(config)
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(4, 1, 3, padding=1))
            self.post_init()

        def predict_maps(self, images, **_):
            x = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)
                             for im in images])
            with torch.no_grad():
                return {"saliency": torch.sigmoid(self.body(x))[:, 0].numpy()}

    AutoConfig.register("rlkit_test_tiny_saliency", TinySalConfig, exist_ok=True)
    AutoModel.register(TinySalConfig, TinySalNet, exist_ok=True)
    torch.manual_seed(0)
    net = TinySalNet(TinySalConfig())
    net.body[2].bias.data.fill_(3.0)  # "trained": differs from a fresh initialisation
    net.save_pretrained(tmp_path / "net")
    trained = load_saliency_predictor(tmp_path / "net")
    fresh = load_saliency_predictor(tmp_path / "net", untrained=True)
    assert float(trained.body[2].bias.detach()[0]) == 3.0 and float(fresh.body[2].bias.detach()[0]) != 3.0
    assert fresh.name.startswith("untrained") and trained.name == "net"
    samples = _samples_from(blemish_records[:2])
    recs = run_saliency(samples, [fresh, trained], tmp_path / "out", progress=False, overlays=1)
    assert len(recs) == 4 and all(r["saliency"]["cc"] is not None for r in recs)
    from rlkit.testing import tiny_model_path

    with pytest.raises(TypeError, match="not a saliency predictor"):
        load_saliency_predictor(tiny_model_path("text"))
