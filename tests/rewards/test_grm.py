"""GRM: prompt, parser, modes, and the OpenAI-compatible backend against a real 127.0.0.1 server."""

import logging
import threading
import time

import numpy as np
import pytest
from PIL import Image

from rlkit.rewards import GenerativeRewardModel, GRMServer, OpenAIBackend, RewardBatch, parse_grm_output
from rlkit.rewards.grm import DEFAULT_TEMPLATE, GRMBackend, Reply


def solid(v):
    return Image.new("RGB", (64, 64), (v, v, v))


def images_of(messages):
    return [b["image"] for m in messages if isinstance(m["content"], list) for b in m["content"]
            if b.get("type") == "image"]


def brightness_judge(messages):
    """A deterministic judge: score = 10 x mean brightness of each edited image."""
    edited = images_of(messages)[1:]
    scores = [round(10 * float(np.asarray(im).mean()) / 255, 3) for im in edited]
    head = "<metrics>\n1. The edit is bright.\n2. Colours stay natural.\n</metrics>\n"
    if len(scores) == 1:
        return head + f"<score>{scores[0]}</score>"
    return head + "<scores>" + "; ".join(f"Image {k}: {s}" for k, s in enumerate(scores, 1)) + "</scores>"


# ------------------------------------------------------------------------------------------- parser
def test_parse_pointwise_and_multi():
    p = parse_grm_output("<metrics>\n1. warm tones\n- keep skin natural\n</metrics> ok <score>7.5</score>")
    assert p.ok and p.metrics == ["warm tones", "keep skin natural"] and p.scores == [7.5] and p.score == 7.5
    assert parse_grm_output("<metrics>1. a</metrics><score>8/10</score>").scores == [8.0]
    m = parse_grm_output("<metrics>1. a</metrics><scores>Image 2: 3; Image 1: 9.5</scores>", 2)
    assert m.ok and m.scores == [9.5, 3.0]


@pytest.mark.parametrize("text, n, reason", [
    ("<score>5</score>", 1, "no <metrics>"),
    ("<metrics>1. a</metrics>", 1, "no <score>"),
    ("<metrics>1. a</metrics><score>great</score>", 1, "not a number"),
    ("<metrics>1. a</metrics><score>11</score>", 1, "outside [0, 10]"),
    ("<metrics>1. a</metrics><score>-1</score>", 1, "outside"),
    ("<metrics>1. a</metrics><scores>Image 1: 3</scores>", 2, "expected [1, 2]"),
    ("<metrics>1. a</metrics><scores>Image 1: 3; Image 1: 4</scores>", 2, "twice"),
    ("\x00\x01 garbage", 1, "no <metrics>"),
])
def test_parse_failures_have_reasons(text, n, reason):
    p = parse_grm_output(text, n)
    assert not p.ok and p.scores is None and reason in p.reason


def test_template_carries_instruction_and_images_in_order():
    src, a, b = solid(1), solid(2), solid(3)
    msgs = DEFAULT_TEMPLATE.messages("make it warmer", src, [a, b])
    assert images_of(msgs) == [src, a, b]
    text = " ".join(blk["text"] for blk in msgs[1]["content"] if blk["type"] == "text")
    assert "make it warmer" in text and "Image 2" in text and "<scores>" in text and "<metrics>" in text


# ------------------------------------------------------------------------------------------- modes (in-memory backend)
class FnBackend(GRMBackend):
    def __init__(self, fn):
        self.fn, self.requests = fn, []

    def generate(self, requests):
        self.requests += list(requests)
        return [Reply(self.fn(m)) for m in requests]


def batch_with_outputs(levels, target=None, prompts=None):
    n = len(levels)
    cols = {"image": [solid(0)] * n, "output_image": [solid(v) for v in levels], "instruction": ["brighten"] * n}
    if target is not None:
        cols["target_image"] = [solid(target)] * n
    return RewardBatch(["c"] * n, prompts or ["p"] * n, cols)


def test_pointwise_scores_are_judge_score_over_10():
    r = GenerativeRewardModel(FnBackend(brightness_judge))(batch_with_outputs([51, 204]))
    assert r.scores == pytest.approx([0.2, 0.8], abs=1e-3)


def test_pairwise_maps_randomised_order_back():
    backend = FnBackend(brightness_judge)
    grm = GenerativeRewardModel(backend, mode="pairwise", seed=3)
    levels = [10, 200, 100, 250, 30, 120, 90, 240]
    r = grm(batch_with_outputs(levels, target=100))
    assert r.scores == [0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 0.0, 1.0]
    # the order was really randomised: the output came first in some requests and second in others
    firsts = [images_of(m)[1].getpixel((0, 0))[0] == 100 for m in backend.requests]
    assert 0 < sum(firsts) < len(firsts)
    assert r.components["score_reference"][0] == pytest.approx(100 / 255, abs=1e-3)


def test_pairwise_two_passes_cancel_position_bias():
    biased = FnBackend(lambda m: "<metrics>1. x</metrics><scores>Image 1: 9; Image 2: 1</scores>")
    one = GenerativeRewardModel(biased, mode="pairwise", seed=0)(batch_with_outputs([5] * 16, target=9)).scores
    assert set(one) == {0.0, 1.0}  # a position-biased judge gives noise, not signal
    two = GenerativeRewardModel(biased, mode="pairwise", passes=2)(batch_with_outputs([5] * 4, target=9)).scores
    assert two == [0.5] * 4  # both orders cancel the bias exactly


def test_group_mode_one_request_per_prompt():
    backend = FnBackend(brightness_judge)
    grm = GenerativeRewardModel(backend, mode="group", seed=1)
    r = grm(batch_with_outputs([51, 102, 153, 204, 255], prompts=["a", "a", "a", "b", "b"]))
    assert len(backend.requests) == 2
    assert [len(images_of(m)) - 1 for m in backend.requests] == [3, 2]
    assert r.scores == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0], abs=1e-3)


def test_missing_images_are_none_with_reason():
    b = RewardBatch(["exposure=+0.5", "not a program"], ["p", "q"],
                    {"image": [solid(100), solid(100)], "instruction": ["x", "y"]})
    r = GenerativeRewardModel(FnBackend(brightness_judge))(b)
    assert r.scores[0] is not None and r.scores[0] > 100 / 255  # rendered program brightened the image
    assert r.scores[1] is None and "did not parse" in r.reasons[1]
    with pytest.raises(ValueError, match="mode='best'"):
        GenerativeRewardModel(FnBackend(brightness_judge), mode="best")


# ------------------------------------------------------------------------------------------- HTTP backend
class Script:
    """answer_fn for the test server with injectable faults."""

    def __init__(self, answer=brightness_judge):
        self.answer = answer
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.faults = []  # consumed one per call: "slow", "500", "garbage", None

    def __call__(self, messages):
        with self.lock:
            self.calls += 1
            fault = self.faults.pop(0) if self.faults else None
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.05)
            if fault == "slow":
                time.sleep(1.0)
            if fault == "500":
                raise RuntimeError("model crashed")
            if fault == "garbage":
                return "\u00ff\u00fe lorem <score> ipsum"
            return self.answer(messages)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def server():
    script = Script()
    with GRMServer(script) as srv:
        yield srv, script


def test_server_is_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        GRMServer(brightness_judge, host="0.0.0.0")


def test_http_backend_scores_like_the_judge(server):
    srv, script = server
    assert srv.base_url.startswith("http://127.0.0.1:")
    backend = OpenAIBackend(srv.base_url, "judge", timeout=5, max_retries=0)
    r = GenerativeRewardModel(backend)(batch_with_outputs([51, 204]))
    assert r.scores == pytest.approx([0.2, 0.8], abs=2e-3)  # PNG round trip is lossless


def test_http_slow_500_and_garbage_are_survived(server, caplog):
    srv, script = server
    backend = OpenAIBackend(srv.base_url, "judge", timeout=0.5, max_retries=2, backoff=0.01, max_concurrency=1)
    grm = GenerativeRewardModel(backend)
    # sample 0: slow then ok; sample 1: 500 then ok; sample 2: garbage (a valid reply, unparseable)
    script.faults = ["slow", None, "500", None, "garbage"]
    with caplog.at_level(logging.WARNING):
        r = grm(batch_with_outputs([51, 102, 153]))
    assert r.scores[0] == pytest.approx(0.2, abs=2e-3) and r.scores[1] == pytest.approx(0.4, abs=2e-3)
    assert r.scores[2] is None and "unparseable" in r.reasons[2] and "lorem" in r.reasons[2]
    assert "timed out" in caplog.text and "HTTP 500" in caplog.text and "model crashed" in caplog.text
    assert backend.stats["retries"] == 2


def test_http_gives_up_after_retries_and_reward_survives(server, caplog):
    srv, script = server
    script.faults = ["500"] * 3
    backend = OpenAIBackend(srv.base_url, "judge", timeout=5, max_retries=2, backoff=0.01)
    with caplog.at_level(logging.WARNING):
        r = GenerativeRewardModel(backend)(batch_with_outputs([51]))
    assert r.scores == [None] and "gave up after 3 attempts" in r.reasons[0] and "HTTP 500" in r.reasons[0]
    assert script.calls == 3


def test_http_connection_refused_is_a_reason_not_a_crash():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", "judge", timeout=1, max_retries=1, backoff=0.01)
    r = GenerativeRewardModel(backend)(batch_with_outputs([51]))
    assert r.scores == [None] and "gave up" in r.reasons[0]


def test_http_cache_and_bounded_concurrency(server, tmp_path):
    srv, script = server
    backend = OpenAIBackend(srv.base_url, "judge", timeout=5, max_concurrency=2, cache_dir=tmp_path)
    b = batch_with_outputs([10, 20, 30, 40, 50, 60])
    first = GenerativeRewardModel(backend)(b).scores
    assert script.max_active <= 2 and script.calls == 6
    again = GenerativeRewardModel(backend)(b).scores
    assert again == first and script.calls == 6 and backend.stats["cache_hits"] == 6
    # the disk cache serves a fresh client too
    fresh = OpenAIBackend(srv.base_url, "judge", timeout=5, cache_dir=tmp_path)
    assert GenerativeRewardModel(fresh)(b).scores == first and script.calls == 6
    # a different image is a different key
    GenerativeRewardModel(backend)(batch_with_outputs([11]))
    assert script.calls == 7


def test_http_client_error_is_not_retried(server):
    srv, _ = server
    backend = OpenAIBackend(srv.base_url.replace("/v1", "/nope"), "judge", timeout=5, max_retries=3)
    reply = backend.generate([DEFAULT_TEMPLATE.messages("x", solid(1), [solid(2)])])[0]
    assert reply.text is None and "HTTP 404" in reply.error and reply.attempts == 1
