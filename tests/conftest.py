"""Test-wide setup: every Hugging Face cache in a temporary folder, offline, progress bars off, 2 threads."""

import os
import tempfile

_CACHE_ROOT = tempfile.mkdtemp(prefix="gvendi-tests-hf-")
os.environ["HF_HOME"] = _CACHE_ROOT
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE_ROOT, "datasets")
os.environ["HF_MODULES_CACHE"] = os.path.join(_CACHE_ROOT, "modules")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GVENDI_DISABLE_PROGRESS_BAR"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def word_proxy_dir(tmp_path_factory) -> str:
    """A tiny random Qwen2 saved with the bundled proxy's BPE tokenizer as a local proxy folder (``--proxy PATH``).

    (A word-level tokenizer saved next to a Qwen2 config reloads as a Qwen2 tokenizer under transformers 5 and encodes
    the test words to nothing, so saved proxies use a real BPE tokenizer.)
    """
    from transformers import AutoTokenizer
    from utils import tiny_qwen

    from gvendi.data import TINY_PROXY_PATH

    tokenizer = AutoTokenizer.from_pretrained(TINY_PROXY_PATH)
    folder = tmp_path_factory.mktemp("word-proxy")
    tiny_qwen(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
