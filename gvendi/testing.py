"""Offline builders for tests, benchmarks and worked examples: a word-level tokenizer and a tiny random Qwen2.

Nothing is downloaded: the tokenizer is built from a vocabulary ``w0 … w{words-1}`` and the model from a config.
The test suite (``tests/utils.py``), the benchmarks (``benchmarks/_common.py``) and the callback's worked example
(``docs/assets/callback_example.py``) all build their models and tokenizers here.

Example:
    >>> from gvendi.testing import tiny_qwen, word_tokenizer
    >>> tokenizer = word_tokenizer(20)
    >>> tokenizer("w3 w4")["input_ids"]
    [9, 10]
    >>> model = tiny_qwen(len(tokenizer))
    >>> model.config.vocab_size, model.training
    (26, False)
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHAT_TEMPLATE", "tiny_qwen", "word_tokenizer"]

#: a Qwen-style chat template (``<|im_start|>role … <|im_end|>``) for :func:`word_tokenizer`
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def word_tokenizer(words: int = 200, *, chat: bool = True) -> Any:
    """A whitespace word-level tokenizer over ``w0 … w{words-1}`` plus Qwen-style special tokens.

    Args:
        words (`int`, *optional*, defaults to 200): the vocabulary's words; ids 0–5 are ``<|endoftext|>``
            (padding), ``<|im_start|>``, ``<|im_end|>`` (end of sequence), ``<unk>``, ``user`` and ``assistant``,
            then ``w0`` is 6.
        chat (`bool`, *optional*, defaults to `True`): attach :data:`CHAT_TEMPLATE`.

    Returns:
        `transformers.PreTrainedTokenizerFast`
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials + ["user", "assistant"] + [f"w{i}" for i in range(words)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>"],
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_qwen(
    vocab_size: int,
    *,
    hidden: int = 32,
    layers: int = 2,
    intermediate: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    tied: bool = True,
    max_positions: int = 256,
    seed: int | None = 0,
    dtype: Any = None,
) -> Any:
    """A randomly initialised Qwen2 causal LM built from a config, in eval mode.

    Args:
        vocab_size (`int`): the vocabulary size (``len(tokenizer)``).
        hidden (`int`, *optional*, defaults to 32): the hidden width.
        layers (`int`, *optional*, defaults to 2): the number of decoder layers.
        intermediate (`int`, *optional*, defaults to 64): the MLP width.
        heads (`int`, *optional*, defaults to 4): attention heads.
        kv_heads (`int`, *optional*, defaults to 2): key/value heads.
        max_positions (`int`, *optional*, defaults to 256): the longest sequence.
        tied (`bool`, *optional*, defaults to `True`): tie the input embedding and the LM head.
        seed (`int`, *optional*, defaults to 0): ``torch.manual_seed`` before the weights are drawn; ``None`` draws
            from the current generator state.
        dtype (`torch.dtype`, *optional*): cast the weights.

    Returns:
        `transformers.Qwen2ForCausalLM`
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if seed is not None:
        torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        tie_word_embeddings=tied,
        max_position_embeddings=max_positions,
    )
    model = Qwen2ForCausalLM(config)
    return (model if dtype is None else model.to(dtype)).eval()
