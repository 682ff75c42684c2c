"""GRM answers that must not score: each failure has its reason (never a silent 0/1), the writer and the
parser agree, and adversarial text parses in linear time."""

from __future__ import annotations

import time

import pytest

from rlkit.rewards.grm import parse_grm_output
from rlkit.rewards.grm.prompt import format_grm_answer

M = "<metrics>\n1. exposure raised\n</metrics>\n"


@pytest.mark.parametrize("text, n, reason", [
    # no score
    (M, 1, "no <score>N</score>"),
    (M + "<scores>Image 1: 3</scores>", 1, "a <scores> block is for several images"),
    (M, 2, "no <scores>"),
    (M + "<scores>Image 1: 3</scores>", 2, "no score for some image"),
    (M + "<scores></scores>", 2, "no score for some image"),
    (M + "<score>7", 1, "no <score>N</score>"),  # unclosed tag
    # two scores for one image
    (M + "<score>7</score> then <score>3</score>", 1, "two scores for one image"),
    (M + "<scores>Image 1: 3; Image 1: 4; Image 2: 5</scores>", 2, "two scores for one image"),
    (M + "<scores>Image 1: 3; Image 2: 5</scores><scores>Image 1: 5; Image 2: 3</scores>", 2, "2 <scores> blocks"),
    # out of range / not a number
    (M + "<score>10.5</score>", 1, "outside [0, 10]"),
    (M + "<scores>Image 1: 3; Image 2: -2</scores>", 2, "score -2 for image 2 is outside"),
    (M + "<score>seven</score>", 1, "not a number"),
    (M + "<score>7 or 8</score>", 1, "not a number"),
    # pair order confused
    (M + "<score>7</score><score>3</score>", 2, "pair order confused"),
    (M + "<scores>7; 3</scores>", 2, "pair order confused"),
    (M + "<scores>Image 1: 7; 3</scores>", 2, "pair order confused"),
    (M + "<scores>Image 2: 7; Image 3: 3</scores>", 2, "pair order confused: image 3"),
    (M + "<scores>Image 0: 7; Image 1: 3</scores>", 2, "pair order confused: image 0"),
])
def test_failures_name_their_reason(text, n, reason):
    p = parse_grm_output(text, n)
    assert not p.ok and p.scores is None and p.score is None
    assert reason in p.reason, p.reason


@pytest.mark.parametrize("text, n, scores", [
    (M + "<scores>Image 2: 3; Image 1: 9.5</scores>", 2, [9.5, 3.0]),  # labels, not positions, decide
    (M + "<SCORES>image 1 = 8/10, image 2 = 3/10</SCORES>", 2, [8.0, 3.0]),
    (M + "<scores>\nImage 1: 8 (keeps the sky)\nImage 2: 4\n</scores>", 2, [8.0, 4.0]),
    (M + "<score> 6.5 / 10 </score>", 1, [6.5]),
    (M + "<score>0</score>", 1, [0.0]),
    (M + "<score>10</score>", 1, [10.0]),
])
def test_accepted_answers(text, n, scores):
    p = parse_grm_output(text, n)
    assert p.ok and p.scores == scores and p.metrics == ["exposure raised"]


def test_writer_and_parser_agree():
    metrics = ["warmer white balance", "the sky keeps its detail"]
    for scores in ([8.0], [8.0, 3.0], [2.5, 9.0, 0.0]):
        text = format_grm_answer(metrics, scores)
        p = parse_grm_output(text, len(scores))
        assert p.ok and p.scores == scores and p.metrics == metrics
    assert format_grm_answer(["a"], [8, 3]) == "<metrics>\n1. a\n</metrics>\n<scores>Image 1: 8; Image 2: 3</scores>"
    with pytest.raises(ValueError, match="outside"):
        format_grm_answer(["a"], [11])
    with pytest.raises(ValueError, match="metrics"):
        format_grm_answer(["a </metrics>"], [1])


def test_parsing_is_linear_in_adversarial_text():
    """Inputs that make backtracking patterns quadratic: unclosed tags, long digit and blank runs."""
    n = 200_000
    texts = ["<metrics>" * n, M + "<scores>" + "1" * n + "</scores>", M + "<scores>" + " " * n + "1</scores>",
             M + "<scores>" + "Image 1: 3; " * (n // 12) + "</scores>", "<score>" * n + "</score>" * n]
    for text in texts:
        t0 = time.perf_counter()
        for k in (1, 2):
            parse_grm_output(text, k)
        assert time.perf_counter() - t0 < 1.0, text[:40]
