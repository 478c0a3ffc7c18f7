"""The featurization methods the benchmarks compare, each with ``features(examples) -> (n, dim)`` unit rows.

- ``plain_forward_backward``: one ordinary forward + backward (weight gradients included), no projection: the limit.
- ``GvendiMethod``: gvendi's `GradientFeaturizer` (``"factored"``, the default, ``"sketch"`` or ``"dense"``).
- ``PaperReference``: how the paper's released code computes features, written here from its description (SPEC §1):
  one example per forward/backward, the full-parameter ``.grad`` flattened in ``named_parameters()`` order, times a
  dense Rademacher matrix ±1/√k drawn from a seeded generator in row chunks (as TRAK's projector does on a GPU).
- ``BergsonMethod``: EleutherAI's bergson (PyPI) collector hooks with its own projections, driven by the same
  batches and the same loss (sum over examples of the mean completion-token cross-entropy).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gvendi.gradients import per_example_loss
from gvendi.proxy import IGNORE_INDEX, EncodedExample


def random_examples(n: int, *, length: int, prompt_length: int, vocab: int, seed: int = 0) -> list[EncodedExample]:
    """``n`` token sequences of ``length`` random ids; the first ``prompt_length`` tokens are masked from the loss."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, length), generator=generator)
    examples = []
    for row in ids.tolist():
        labels = [IGNORE_INDEX] * prompt_length + row[prompt_length:]
        examples.append(EncodedExample(row, labels))
    return examples


def pad_batch(examples: list[EncodedExample], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids``, ``labels`` and ``attention_mask`` for a list of examples."""
    longest = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), longest), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), longest), dtype=torch.long)
    for i, example in enumerate(examples):
        n = len(example.input_ids)
        ids[i, :n] = torch.tensor(example.input_ids)
        labels[i, :n] = torch.tensor(example.labels)
        mask[i, :n] = 1
    return ids, labels, mask


def _unit(features: torch.Tensor) -> np.ndarray:
    features = features.double()
    return (features / features.norm(dim=1, keepdim=True)).float().numpy()


def plain_forward_backward(model: torch.nn.Module, examples: list[EncodedExample]) -> None:
    """One ordinary training-style forward + backward of the batch (weight gradients computed), nothing else."""
    device = next(model.parameters()).device
    ids, labels, mask = (t.to(device) for t in pad_batch(examples))
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        per_example_loss(model(input_ids=ids, attention_mask=mask, use_cache=False).logits, labels).sum().backward()
    model.zero_grad(set_to_none=True)


class GvendiMethod:
    """gvendi's featurizer on an in-memory model (its default projection unless told otherwise)."""

    def __init__(self, model, tokenizer, *, projection: str = "factored", dim: int = 1024, seed: int = 0):
        from gvendi import GradientFeaturizer

        self.featurizer = GradientFeaturizer(
            model,
            tokenizer=tokenizer,
            dim=dim,
            projection=projection,
            seed=seed,
            batch_size=1 << 30,
            show_progress=False,
        )

    def features(self, examples: list[EncodedExample]) -> np.ndarray:
        return self.featurizer.featurize_encoded(examples)


class PaperReference:
    """Paper-faithful features: one backward per example, full ``.grad``, dense Rademacher projection.

    Gradients of a group of examples are gathered (|θ| floats each) and projected together, the projection matrix
    being generated chunk by chunk from a seeded generator (it is never stored: |θ|·k entries).

    Args:
        model: the proxy (its ``requires_grad`` flags are used as they are).
        dim (`int`): k.
        seed (`int`): generator seed of the Rademacher matrix.
        group (`int`): examples whose full gradients are held, then projected, at once.
        chunk_rows (`int`): matrix rows generated at a time.
    """

    def __init__(self, model, *, dim: int = 1024, seed: int = 0, group: int = 8, chunk_rows: int = 1 << 14):
        self.model = model
        self.dim = dim
        self.seed = seed
        self.group = group
        self.chunk_rows = chunk_rows
        self.params = [p for _, p in model.named_parameters()]  # tied weights once, named_parameters() order
        self.total = sum(p.numel() for p in self.params)

    def _full_gradient(self, example: EncodedExample) -> torch.Tensor:
        self.model.zero_grad(set_to_none=True)
        ids = torch.tensor([example.input_ids])
        labels = torch.tensor([example.labels])
        with torch.enable_grad():
            per_example_loss(self.model(input_ids=ids, use_cache=False).logits, labels).sum().backward()
        return torch.cat([p.grad.flatten() for p in self.params])  # [|θ|]

    def project(self, grads: torch.Tensor) -> torch.Tensor:
        """``grads`` [n, |θ|] → [n, k] with a Rademacher matrix ±1/√k generated from ``seed``."""
        generator = torch.Generator().manual_seed(self.seed)
        out = torch.zeros(grads.shape[0], self.dim, dtype=torch.float32)
        for start in range(0, self.total, self.chunk_rows):
            stop = min(self.total, start + self.chunk_rows)
            signs = torch.randint(0, 2, (stop - start, self.dim), generator=generator, dtype=torch.int8)
            out.addmm_(grads[:, start:stop], signs.float().mul_(2).sub_(1))  # [n,c]×[c,k] → [n,k]
        return out / math.sqrt(self.dim)

    def features(self, examples: list[EncodedExample]) -> np.ndarray:
        rows = []
        for start in range(0, len(examples), self.group):
            grads = torch.stack([self._full_gradient(e) for e in examples[start : start + self.group]])
            rows.append(self.project(grads))
        self.model.zero_grad(set_to_none=True)
        return _unit(torch.cat(rows))


def bergson_available() -> tuple[bool, str]:
    try:
        import bergson  # noqa: F401
        from bergson.collector.collector import HookCollectorBase  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means: cannot run
        return False, f"{type(err).__name__}: {err}"
    return True, ""


class BergsonMethod:
    """EleutherAI bergson's hook collector, projections and module coverage, on the same batches and loss.

    ``mode="per_module"``: bergson's default two-sided projection of each Linear module's gradient to
    ``rank × rank``, concatenated; a seeded dense Gaussian map (ours, the "second stage" of SPEC §3) takes the
    concatenation to ``dim``. ``mode="global"``: bergson's single-sided projection of every module's gradient to
    ``dim`` with its own Rademacher blocks, summed (one ``dim`` vector per example, no second stage).

    Bergson hooks ``nn.Linear`` modules only (the tied output layer included, as the whole CausalLM is hooked);
    embeddings and norms are not covered. The model is frozen with the input embeddings trainable, as bergson's
    own worker does.
    """

    def __init__(self, model, *, mode: str = "per_module", dim: int = 1024, rank: int = 16, seed: int = 0):
        from dataclasses import dataclass as _dataclass

        from bergson.collector.collector import HookCollectorBase
        from bergson.gradients import GradientProcessor

        @_dataclass(kw_only=True)
        class _Collector(HookCollectorBase):
            def setup(self) -> None:
                self.attribute_tokens = False

            def teardown(self) -> None:
                pass

            def backward_hook(self, module, g) -> None:
                name = module._name
                grads = self._module_gradient(module, g)
                if self.accumulate_global_projection(name, grads):
                    return
                self.mod_grads[name] = self._materialize_gradient(grads).float()

            def process_batch(self, indices, **kwargs) -> None:
                pass

        self.model = model
        self.mode = mode
        self.dim = dim
        self.rank = rank
        self.seed = seed
        processor = GradientProcessor(
            projection_dim=dim if mode == "global" else rank,
            projection_type="rademacher",
            projection_target="global" if mode == "global" else "per_module",
            projection_seed=seed,
            include_bias=True,
        )
        self.collector = _Collector(model=model, processor=processor)
        self.names = list(self.collector.target_info)
        self._second_stage: torch.Tensor | None = None

    def _stage_two(self, width: int) -> torch.Tensor:
        if self._second_stage is None or self._second_stage.shape[0] != width:
            generator = torch.Generator().manual_seed(1_000_003 + self.seed)
            self._second_stage = torch.randn(width, self.dim, generator=generator) / math.sqrt(self.dim)
        return self._second_stage

    def features(self, examples: list[EncodedExample], batch_size: int = 8) -> np.ndarray:
        saved = {id(p): p.requires_grad for p in self.model.parameters()}
        self.model.requires_grad_(False)
        self.model.get_input_embeddings().requires_grad_(True)
        rows = []
        try:
            for start in range(0, len(examples), batch_size):
                batch = examples[start : start + batch_size]
                ids, labels, mask = pad_batch(batch)
                self.collector.mod_grads = {}
                with self.collector.with_batch(mask.bool()), torch.enable_grad():  # with_batch returns the collector
                    logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    per_example_loss(logits, labels).sum().backward()
                self.model.zero_grad(set_to_none=True)
                if self.mode == "global":
                    rows.append(self.collector.mod_grads["gradients"].float())
                else:
                    concat = torch.cat([self.collector.mod_grads[name] for name in self.names], dim=1)
                    rows.append(concat @ self._stage_two(concat.shape[1]))
        finally:
            for p in self.model.parameters():
                p.requires_grad_(saved[id(p)])
        return _unit(torch.cat(rows))
