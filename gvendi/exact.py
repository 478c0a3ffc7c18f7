"""Exact G-Vendi references at any width: the Gram matrix of per-example gradients, without forming them.

At the paper's proxy widths a single example's full gradient has ~494M entries, so the ``N × |θ|`` matrix an exact
check would need does not fit. Its Gram matrix does (``N × N``), and it can be computed from token-level quantities
captured in one batched forward and backward pass over unpadded examples of equal length:

- a 2-D weight used as ``Σ_t u_t v_tᵀ`` (a linear layer: ``u = δ`` its output gradient, ``v = x`` its input; an
  embedding: ``u`` the one-hot token, ``v`` the output gradient) gives
  ``⟨G_i, G_j⟩ = Σ_{t∈i, s∈j} (u_t·u_s)(v_t·v_s)``, two token Gram matrices multiplied entry by entry and summed over
  each pair of examples. A weight used twice (tied embeddings: the input lookup and the LM head) adds the cross terms
  between its uses the same way (``u_t·onehot(id_s) = δ_t[id_s]``).
- every other parameter (biases, norm weights) is small: its per-example gradients are formed directly (``Σ_t δ_t``
  for a linear bias, a vector-Jacobian product of the module for the rest) and add ``R Rᵀ``.

Nothing here shares code with :mod:`gvendi.gradients` (which captures the same quantities to *project* them), so the
two check each other. A dense projection is then simulated exactly from the Gram's eigendecomposition
(:func:`dense_projection_from_gram`): for ``G = U Λ^{1/2} Vᵀ`` and a Gaussian ``P``, ``G P`` has the law of
``U Λ^{1/2} Z`` with ``Z`` Gaussian, whatever ``|θ|`` is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vjp, vmap

from .gradients import per_example_loss
from .proxy import EncodedExample
from .vendi import vendi_from_eigenvalues

__all__ = ["dense_projection_from_gram", "exact_gradient_gram", "exact_gvendi_from_gram"]


@dataclass
class _Use:
    """One use of a 2-D weight by a module: per-token row factors ``u`` and column factors ``v``, over all tokens."""

    kind: str  # "dense" (u is a float matrix) or "onehot" (u is token ids into the weight's rows)
    u: list[torch.Tensor] = field(default_factory=list)
    v: list[torch.Tensor] = field(default_factory=list)

    def finish(self) -> tuple[str, torch.Tensor, torch.Tensor]:
        return self.kind, torch.cat(self.u), torch.cat(self.v)


def _row_gram(a: tuple[str, torch.Tensor], b: tuple[str, torch.Tensor]) -> torch.Tensor:
    """``u_t · u_s`` between the tokens of two uses: ``[Ma, Mb]`` float64."""
    (kind_a, ua), (kind_b, ub) = a, b
    if kind_a == "dense" and kind_b == "dense":
        return (ua @ ub.T).double()
    if kind_a == "onehot" and kind_b == "onehot":
        return (ua[:, None] == ub[None, :]).double()
    if kind_a == "dense":  # u_t · onehot(id_s) = u_t[id_s]
        return ua[:, ub].double()
    return ub[:, ua].T.double()


def exact_gradient_gram(
    model: nn.Module, examples: Sequence[EncodedExample], *, batch_size: int = 16, block_tokens: int = 2048
) -> torch.Tensor:
    """The exact Gram matrix ``K_ij = ⟨g_i, g_j⟩`` of per-example loss gradients over every parameter.

    ``g_i`` is the gradient of example ``i``'s mean loss over its labelled tokens (``labels != -100``), as in
    :func:`gvendi.gradients.per_example_loss`. Examples of equal length run together, unpadded (so attention cannot
    couple them); cost is ``O(M² · Σ widths)`` for ``M`` tokens in all, memory ``O(M · Σ widths)``.

    Args:
        model (`nn.Module`): a causal LM (``model(input_ids=...).logits``) on the CPU or a GPU.
        examples (sequence of `EncodedExample`): token ids and labels.
        batch_size (`int`, *optional*, defaults to 16): examples per forward/backward pass.
        block_tokens (`int`, *optional*, defaults to 2048): tokens per row block of the token Gram matrices.

    Returns:
        `torch.Tensor`: ``[N, N]`` float64 on the CPU.
    """
    if not examples:
        raise ValueError("examples is empty: the Gram matrix needs at least one example.")
    device = next(model.parameters()).device
    names = {id(p): n for n, p in model.named_parameters()}  # canonical names (tied parameters once)
    uses: dict[str, dict[str, _Use]] = defaultdict(dict)  # 2-D weights by name: their uses by module name
    small: dict[str, list[torch.Tensor]] = defaultdict(list)  # other parameters' per-example gradients [b, p]
    token_example: list[torch.Tensor] = []
    order: list[int] = []

    by_length: dict[int, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_length[len(example.input_ids)].append(index)
    modules = [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    requires = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        for length, indices in sorted(by_length.items()):
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
                grads: dict[str, torch.Tensor] = {}
                handles = []

                def forward_hook(module, inputs, output, name=None, chunk=chunk, captured=captured, grads=grads):
                    x, replaced = inputs[0].detach(), None
                    if isinstance(module, nn.Embedding) and output.shape[0] == 1 and len(chunk) > 1:
                        # a lookup shared by the batch (positions [1,T]): give each example its own output gradient
                        output = replaced = output.expand(len(chunk), *output.shape[1:])
                        x = x.expand(len(chunk), *x.shape[1:])
                    captured[name] = (x, output)
                    output.register_hook(lambda g, name=name: grads.__setitem__(name, g.detach()))
                    return replaced

                for name, module in modules:
                    handles.append(
                        module.register_forward_hook(lambda m, i, o, name=name: forward_hook(m, i, o, name))
                    )
                try:
                    ids = torch.tensor([examples[i].input_ids for i in chunk], device=device)
                    labels = torch.tensor([examples[i].labels for i in chunk], device=device)
                    model.zero_grad(set_to_none=True)
                    per_example_loss(model(input_ids=ids).logits, labels).sum().backward()
                finally:
                    for handle in handles:
                        handle.remove()
                b = len(chunk)
                token_example.append(torch.arange(len(order), len(order) + b).repeat_interleave(length))
                order.extend(chunk)
                for name, module in modules:
                    x, _ = captured[name]
                    delta = grads[name]
                    _collect(module, name, names, x, delta, b, uses, small)
        model.zero_grad(set_to_none=True)
    finally:
        for p in model.parameters():
            p.requires_grad_(requires[id(p)])

    n = len(examples)
    example_of = torch.cat(token_example).to(device)  # [M]: the (run-order) example of each token
    onehot = torch.zeros(example_of.numel(), n, dtype=torch.float64, device=device)
    onehot[torch.arange(example_of.numel(), device=device), example_of] = 1.0
    gram = torch.zeros(n, n, dtype=torch.float64, device=device)
    for name_uses in uses.values():
        finished = [use.finish() for use in name_uses.values()]
        for kind_a, ua, va in finished:
            for kind_b, ub, vb in finished:
                for start in range(0, va.shape[0], block_tokens):
                    stop = min(va.shape[0], start + block_tokens)
                    rows = _row_gram((kind_a, ua[start:stop]), (kind_b, ub))  # [A, M]
                    cols = (va[start:stop] @ vb.T).double()  # [A, M]
                    gram += onehot[start:stop].T @ (rows * cols) @ onehot  # [N,A]×[A,M]×[M,N]
    for rows_list in small.values():
        rows = torch.cat(rows_list).double()  # [N, p] in run order
        gram += rows @ rows.T
    inverse = torch.empty(n, dtype=torch.int64)
    inverse[torch.tensor(order)] = torch.arange(n)  # run order → input order
    return gram.cpu()[inverse][:, inverse]


def _collect(module, name, names, x, delta, b, uses, small) -> None:
    """Record one module's contribution for a batch of ``b`` unpadded examples."""
    params = dict(module.named_parameters(recurse=False))
    weight = params.get("weight")
    tokens = delta.shape[0] * (delta.shape[1] if delta.ndim > 2 else 1)
    if isinstance(module, nn.Linear) or (type(module).__name__ == "Conv1D" and hasattr(module, "nf")):
        d = delta.reshape(tokens, -1).float()
        xs = x.reshape(tokens, -1).float()
        linear = isinstance(module, nn.Linear)
        use = uses[names[id(weight)]].setdefault(name, _Use("dense"))
        use.u.append(d if linear else xs)  # rows of the weight: outputs (Linear) or inputs (Conv1D)
        use.v.append(xs if linear else d)
        if "bias" in params:
            small[names[id(params["bias"])]].append(d.reshape(b, -1, d.shape[-1]).sum(dim=1))
        return
    if isinstance(module, nn.Embedding):
        use = uses[names[id(weight)]].setdefault(name, _Use("onehot"))
        use.u.append(x.reshape(-1))
        use.v.append(delta.reshape(x.numel(), -1).float())
        return
    local = {key: p.detach() for key, p in params.items()}

    def example_grad(x_n, d_n):
        _, pullback = vjp(lambda p: functional_call(module, p, (x_n[None],)), local)
        return pullback(d_n[None])[0]

    with torch.enable_grad():
        per_example = vmap(example_grad)(x, delta)
    for key, value in per_example.items():
        small[names[id(params[key])]].append(value.reshape(b, -1).float())


def exact_gvendi_from_gram(gram: torch.Tensor, q: float = 1.0) -> float:
    """G-Vendi of the unprojected gradients: the Vendi Score of ``K_ij / √(K_ii K_jj)``."""
    gram = torch.as_tensor(gram, dtype=torch.float64)
    norms = gram.diagonal().clamp_min(1e-300).sqrt()
    cosine = gram / norms[:, None] / norms[None, :]
    eigenvalues = torch.linalg.eigvalsh(cosine / gram.shape[0]).clamp_min(0).numpy()
    return float(vendi_from_eigenvalues(eigenvalues, q))


def dense_projection_from_gram(gram: torch.Tensor, dim: int, *, seed: int = 0) -> np.ndarray:
    """Features with the law of a dense Gaussian projection ``G P / √dim`` of gradients whose Gram is ``gram``.

    With ``G = U Λ^{1/2} Vᵀ`` (``V`` orthonormal columns) and ``P`` i.i.d. standard normal, ``Vᵀ P`` is itself i.i.d.
    standard normal, so ``U Λ^{1/2} Z`` with a fresh Gaussian ``Z`` [rank, dim] is an exact draw. A dense Rademacher
    projection (the paper's) agrees with it to ``O(1/√|θ|)`` for gradients spread over many parameters.

    Returns:
        `np.ndarray`: ``[N, dim]`` float64 (not normalised).
    """
    gram = torch.as_tensor(gram, dtype=torch.float64)
    eigenvalues, vectors = torch.linalg.eigh(gram)
    keep = eigenvalues > eigenvalues.max() * 1e-12
    generator = torch.Generator().manual_seed(int(seed))
    z = torch.randn(int(keep.sum()), dim, generator=generator, dtype=torch.float64)
    return ((vectors[:, keep] * eigenvalues[keep].sqrt()) @ z / dim**0.5).numpy()
