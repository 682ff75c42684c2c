"""trl's GRPOTrainer accepts the tiny VLM with an environment_factory (tool calling) and trains."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import rlkit.testing as rt


class _ExposureEnv:
    """A minimal tool environment: one tool, reward = number of tool calls."""

    def reset(self, **row) -> str:
        self.calls = 0
        return "You may adjust the exposure."

    def adjust_exposure(self, ev: float) -> str:
        """Change the exposure of the photo.

        Args:
            ev: Exposure change in stops.

        Returns:
            A status message.
        """
        self.calls += 1
        return f"exposure changed by {ev}"

    def get_reward(self) -> float:
        return float(self.calls)


@pytest.mark.slow
def test_grpo_environment_factory_on_tiny_vlm(tmp_path, monkeypatch):
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    path = rt.tiny_model_path("qwen2_5_vl")
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8"))
    prompt = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Retouch this photo."}]}
    ]
    dataset = Dataset.from_dict({"prompt": [prompt] * 4, "image": [image] * 4})
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        max_steps=2,
        max_tool_calling_iterations=2,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
    )
    trainer = GRPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(path),
        args=args,
        train_dataset=dataset,
        processing_class=rt.load_processor(path),
        environment_factory=_ExposureEnv,
    )
    # trl recognised the template: tool-call parsing set up, no training-template swap needed.
    assert trainer._tokenizer.response_template is not None
    assert trainer.chat_template is None
    assert [t.__name__ for t in trainer.tools] == ["adjust_exposure"]
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2 and all(np.isfinite(h["loss"]) for h in logged)


@pytest.mark.slow
def test_grpo_environment_factory_on_tiny_text_lm(tmp_path, monkeypatch):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    path = rt.tiny_model_path("text")
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": "Fix the photo."}]] * 4})
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        max_steps=1,
        max_tool_calling_iterations=2,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(path),
        args=args,
        train_dataset=dataset,
        processing_class=rt.load_processor(path),
        environment_factory=_ExposureEnv,
    )
    assert trainer._tokenizer.response_template is not None
    trainer.train()
    assert trainer.state.global_step == 1
