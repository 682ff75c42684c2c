"""Doubles for the loops' agents (each records what it was given) and the tiny real agents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlkit.testing import one_torch_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


class SpotPerception:
    """Two maps (artifact, failure): 1 inside a square at ``box`` of the artifact map wherever the image's red
    channel there is below ``clean_red`` (the flaw is 'still there'), 0 elsewhere; records every call."""

    map_names = ("artifact", "failure")

    def __init__(self, box=(4, 4, 12, 12), clean_red=0.9, fail=None):
        self.box, self.clean_red, self.fail, self.seen = box, clean_red, fail, []

    def predict_maps(self, images, *, prompts=None, sources=None, instructions=None):
        if self.fail:
            raise RuntimeError(self.fail)
        self.seen.append({"images": [im.clone() for im in images], "sources": sources, "instructions": instructions,
                          "prompts": prompts})
        out = {"artifact": [], "failure": []}
        for im in images:
            h, w = im.shape[-2:]
            a = np.zeros((h, w), np.float32)
            x1, y1, x2, y2 = self.box
            if float(im[0, y1:y2, x1:x2].mean()) < self.clean_red:
                a[y1:y2, x1:x2] = 0.9
            out["artifact"].append(a)
            out["failure"].append(np.zeros((h, w), np.float32))
        return {k: np.stack(v) for k, v in out.items()}


class OneMap(SpotPerception):
    """The same, as one ``saliency`` map (Agentic Retoucher's text-conditioned net)."""

    map_names = ("saliency",)

    def predict_maps(self, images, **kw):
        out = super().predict_maps(images, **kw)
        return {"saliency": out["artifact"]}


class Scripted:
    """A chat backend answering each request with the next scripted text (the last one repeats)."""

    def __init__(self, *answers):
        self.answers = list(answers) or ['[{"flaw_type": "color_inconsistency", "description": "a dark blotch"}]']
        self.requests = []

    def generate(self, requests):
        out = []
        for r in requests:
            self.requests.append(r)
            out.append(self.answers[min(len(self.requests) - 1, len(self.answers) - 1)])
        return out


class RedScore:
    """An evaluator: all three scores = 100 x the mean red of the edited image's top-left 16 x 16 corner."""

    def __init__(self):
        self.calls = 0

    def score(self, sources, edited, instructions):
        self.calls += 1
        out = []
        for e in edited:
            t = e if isinstance(e, torch.Tensor) else torch.from_numpy(np.asarray(e, np.float32) / 255).permute(2, 0, 1)
            v = 100.0 * float(t[0, :16, :16].mean())
            out.append([v, v, v])
        return np.array(out)


class AddRed:
    """An inpainting tool double: adds ``steps[k]`` to the red channel under the mask on its k-th call."""

    def __init__(self, *steps):
        self.steps, self.calls = list(steps), []

    def __call__(self, image, mask, prompt, *, seed=None):
        self.calls.append({"mask": np.asarray(mask).copy(), "prompt": prompt, "seed": seed})
        out = image.clone()
        m = torch.as_tensor(np.asarray(mask, bool))
        out[0][m] = (out[0][m] + self.steps[min(len(self.calls) - 1, len(self.steps) - 1)]).clamp(0, 1)
        return out


def grey(h=32, w=32, v=0.5):
    return torch.full((3, h, w), v)


@pytest.fixture
def d():
    """The doubles, as one namespace (``--import-mode=importlib``: tests cannot import this file)."""
    from types import SimpleNamespace

    return SimpleNamespace(SpotPerception=SpotPerception, OneMap=OneMap, Scripted=Scripted, RedScore=RedScore,
                           AddRed=AddRed, grey=grey)
