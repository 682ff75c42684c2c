"""GRM backends with the tiny local VLM: in-process batched generation, and served over loopback HTTP."""

import logging

import pytest
from PIL import Image

from rlkit.rewards import GenerativeRewardModel, GRMServer, OpenAIBackend, RewardBatch, TransformersBackend
from rlkit.rewards.grm import DEFAULT_TEMPLATE, transformers_answer_fn


@pytest.fixture(scope="module")
def tiny_vlm():
    from rlkit.testing import tiny_model_path

    return str(tiny_model_path("qwen2_5_vl"))


def imgs(n):
    return [Image.new("RGB", (64, 64), (30 * i, 200 - 20 * i, 90)) for i in range(n)]


def test_batched_generation_equals_one_by_one(tiny_vlm):
    src = imgs(4)
    reqs = [DEFAULT_TEMPLATE.messages("warmer" * (i + 1), src[0], [src[i]]) for i in range(3)]
    reqs.append(DEFAULT_TEMPLATE.messages("two", src[0], [src[1], src[2]]))  # different prompt length
    batched = TransformersBackend(tiny_vlm, batch_size=4, max_new_tokens=12).generate(reqs)
    single = TransformersBackend(tiny_vlm, batch_size=1, max_new_tokens=12).generate(reqs)
    assert all(r.text for r in batched)
    assert [r.text for r in batched] == [r.text for r in single]  # left padding does not change greedy output


def test_tiny_model_judge_gives_none_with_reason(tiny_vlm, caplog):
    grm = GenerativeRewardModel(TransformersBackend(tiny_vlm, max_new_tokens=8))
    b = RewardBatch(["a", "b"], columns={"image": imgs(2), "output_image": imgs(2)[::-1], "instruction": ["x"] * 2})
    with caplog.at_level(logging.WARNING, logger="rlkit.rewards.grm"):
        r = grm(b)
    assert r.scores == [None, None]  # a random tiny model does not write <metrics>/<score>
    assert all("unparseable" in why for why in r.reasons)
    assert "2/2 samples unscored" in caplog.text


def test_http_server_answering_with_the_tiny_model(tiny_vlm):
    local = TransformersBackend(tiny_vlm, batch_size=1, max_new_tokens=10)
    with GRMServer(transformers_answer_fn(tiny_vlm, max_new_tokens=10)) as srv:
        remote = OpenAIBackend(srv.base_url, "tiny", timeout=30, max_retries=0)
        req = DEFAULT_TEMPLATE.messages("warmer", imgs(1)[0], [imgs(2)[1]])
        # PNG is lossless, so the served model sees the same pixels and answers exactly like the local one
        assert remote.generate([req])[0].text == local.generate([req])[0].text


def test_tiny_model_server_with_slow_answer_and_500(tiny_vlm, caplog):
    """The served tiny model: one slow answer (timeout, retried), one 500 (retried), then its garbage text."""
    import time

    answer = transformers_answer_fn(tiny_vlm, max_new_tokens=8)
    faults = ["slow", "500"]

    def faulty(messages):
        fault = faults.pop(0) if faults else None
        if fault == "slow":
            time.sleep(2.0)
        if fault == "500":
            raise RuntimeError("CUDA out of memory (simulated)")
        return answer(messages)

    with GRMServer(faulty) as srv:
        backend = OpenAIBackend(srv.base_url, "tiny", timeout=1.0, max_retries=3, backoff=0.01, max_concurrency=1)
        grm = GenerativeRewardModel(backend)
        b = RewardBatch(["a"], columns={"image": imgs(1), "output_image": imgs(2)[1:], "instruction": ["x"]})
        with caplog.at_level(logging.WARNING):
            r = grm(b)
    assert r.scores == [None] and "unparseable" in r.reasons[0]  # the garbage answer, after two retries
    assert backend.stats["retries"] == 2 and backend.stats["http_calls"] == 3
    assert "timed out" in caplog.text and "HTTP 500" in caplog.text and "simulated" in caplog.text
