"""Per-example projected loss gradients, captured by hooks inside one batched forward and backward pass.

For a linear layer ``y = W x (+ b)`` the gradient of example ``n`` is ``Σ_t δ_{n,t} x_{n,t}ᵀ`` (and ``Σ_t δ_{n,t}``
for the bias), where ``x`` is the layer input and ``δ = ∂L/∂y`` the gradient at its output. Hooks capture ``x`` in
the forward pass and ``δ`` in the backward pass, form that one layer's per-example gradient and project it at once,
so a full-model gradient never exists. With the weights frozen autograd skips the weight-gradient GEMMs, which
these per-example products replace at the same FLOP count; a projector that takes the factors (``"factored"``)
never forms the product at all. Embedding rows, RMSNorm/LayerNorm (in closed form, checked once per class against
autograd) and any other parameterised leaf module (a vmapped VJP) are handled exactly too: every parameter of the
model contributes.

Because the loss is the *sum* over examples of each example's mean completion-token loss, the captured gradient of
example ``n`` is exactly its own gradient, whatever else is in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vjp, vmap
from torch.nn import functional as F

from .projection import Projector

__all__ = ["GradientCollector", "TargetModule", "discover_targets", "per_example_loss"]


@dataclass
class TargetModule:
    """A hooked module: its qualified name, kind (``linear``, ``conv1d``, ``embedding`` or ``generic``) and the
    canonical names of its parameters (tied parameters share one name, so their gradients add up)."""

    name: str
    module: nn.Module
    kind: str
    param_names: dict[str, str]  # local attribute name → canonical parameter name


def _is_conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")  # GPT-2 style transposed linear


def discover_targets(model: nn.Module, *, trainable_only: bool = False) -> list[TargetModule]:
    """List the modules whose parameters carry gradient, and check that every parameter is covered.

    Raises:
        ValueError: if some parameter lives on a module that is not a leaf (it cannot be hooked exactly), or if the
            model has no parameters at all.
    """
    canonical: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=True):
        if trainable_only and not param.requires_grad:
            continue
        canonical[id(param)] = name
    if not canonical:
        raise ValueError("the model has no (trainable) parameters, so it has no gradient to featurize.")
    targets: list[TargetModule] = []
    for module_name, module in model.named_modules():
        own = {local: p for local, p in module.named_parameters(recurse=False) if id(p) in canonical}
        if not own:
            continue
        if isinstance(module, nn.Linear):
            kind = "linear"
        elif _is_conv1d(module):
            kind = "conv1d"
        elif isinstance(module, nn.Embedding):
            kind = "embedding"
        elif next(module.children(), None) is None:
            kind = "generic"
        else:
            names = ", ".join(f"{module_name}.{local}" for local in own)
            raise ValueError(
                f"parameters {names} live on a non-leaf module ({type(module).__name__}) that gvendi cannot hook "
                "exactly; freeze them (requires_grad=False) and use trainable_only=True, or move them into a leaf "
                "module."
            )
        targets.append(TargetModule(module_name, module, kind, {local: canonical[id(p)] for local, p in own.items()}))
    return targets


def _norm_grads(module: nn.Module, x: torch.Tensor, delta: torch.Tensor, tokens: torch.Tensor) -> dict | None:
    """Per-example gradients ``{"weight": [n,H], "bias": [n,H]}`` of a LayerNorm or RMSNorm layer in closed form;
    ``None`` for any other module. With ``module(x) = w ⊙ x̂ (+ b)`` (up to a constant added to ``w``, as in Gemma)
    they are ``Σ_t δ_t ⊙ x̂_t`` and ``Σ_t δ_t``, over the tokens weighted by ``tokens`` [n,T] (0 on padding)."""
    if x.shape != delta.shape or x.ndim < 2:
        return None
    h = x.float().reshape(x.shape[0], -1, x.shape[-1])  # [n,T,H]
    d = delta.float().reshape(h.shape)
    weights = tokens.to(h.dtype)[:, None, :]  # [n,1,T]
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        normalized = F.layer_norm(h, module.normalized_shape, eps=module.eps)
        weight = torch.bmm(weights, d * normalized)
    elif type(module).__name__.endswith("RMSNorm"):
        eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
        if not isinstance(eps, float):
            return None
        inverse_rms = torch.linalg.vector_norm(h, dim=-1).square_().div_(h.shape[-1]).add_(eps).rsqrt_()  # [n,T]
        weights = weights * inverse_rms[:, None, :]  # x̂ = x / rms(x), folded into the weights
        weight = torch.bmm(weights, d * h)
    else:
        return None
    grads = {"weight": weight.squeeze(1)}
    if getattr(module, "bias", None) is not None:
        grads["bias"] = torch.bmm(tokens.to(h.dtype)[:, None, :], d).squeeze(1)
    return grads


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over each example's labelled tokens (``labels != -100``): shape [n].

    ``logits`` [n,T,V] predict ``labels`` shifted by one, as in Hugging Face causal LMs.
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    losses = nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(shift_labels.shape)  # [n,T-1]
    counts = (shift_labels != -100).sum(dim=1)
    return losses.sum(dim=1) / counts.clamp_min(1)


class GradientCollector:
    """Context manager that hooks a model and accumulates per-example projected gradients.

    Use it around forward + backward passes; each backward adds, per example, the projection of that example's
    gradient into :attr:`features`. Two modes:

    - ``freeze=True`` (featurizing): parameters are frozen for the duration so autograd computes no weight
      gradients; the embedding output is made differentiable so the backward pass still runs.
    - ``freeze=False`` (inside someone else's training step, e.g. the Trainer callback): nothing about the model
      changes; the hooks read the same activations and output-gradients the optimizer step uses.

    Args:
        model (`nn.Module`): the model to hook.
        projector (`Projector`): the projection to ``dim`` features.
        freeze (`bool`, *optional*, defaults to `True`): see above.
        trainable_only (`bool`, *optional*, defaults to `False`): only parameters with ``requires_grad``.

    Example:
        >>> import torch
        >>> from gvendi import load_proxy, make_projector
        >>> model = load_proxy("tiny").model
        >>> ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
        >>> token_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])  # the second example's last token is padding
        >>> with GradientCollector(model, make_projector("sketch", 64)) as collector:
        ...     collector.begin_batch(2, token_mask)
        ...     labels = ids.masked_fill(token_mask == 0, -100)
        ...     per_example_loss(model(ids, attention_mask=token_mask).logits, labels).sum().backward()
        ...     features = collector.end_batch()
        >>> features.shape
        torch.Size([2, 64])
    """

    def __init__(self, model: nn.Module, projector: Projector, *, freeze: bool = True, trainable_only: bool = False):
        self.model = model
        self.projector = projector
        self.freeze = freeze
        self.targets = discover_targets(model, trainable_only=trainable_only)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._saved_requires_grad: dict[int, bool] = {}
        self._out: torch.Tensor | None = None
        self._batch_size = 0
        self._token_mask: torch.Tensor | None = None  # [n,T] bool on the model's device, with a token mask
        self._token_weights: torch.Tensor | None = None  # the mask as float32 [n,T] (made on first use)
        # per example: its real tokens' positions, their count, whether they come first (made on first use)
        self._token_rows: tuple[list[torch.Tensor], list[int], list[bool]] | None = None
        self.group_elements = 1 << 25  # bound on per-example gradient elements held at once (128 MB in fp32)
        self._recomputing = False  # True while a generic module is re-run for its per-example gradients
        self._closed_form: dict[type, bool] = {}  # norm classes whose closed form matched autograd (checked once)

    # lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> GradientCollector:
        if self.freeze:
            for param in self.model.parameters():
                self._saved_requires_grad[id(param)] = param.requires_grad
                param.requires_grad_(False)
        for target in self.targets:
            self._handles.append(target.module.register_forward_hook(self._make_forward_hook(target)))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove every hook and restore ``requires_grad`` (also safe to call twice)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._saved_requires_grad:
            for param in self.model.parameters():
                if id(param) in self._saved_requires_grad:
                    param.requires_grad_(self._saved_requires_grad[id(param)])
            self._saved_requires_grad.clear()

    def begin_batch(self, batch_size: int, token_mask: torch.Tensor | None = None) -> None:
        """Start a batch of ``batch_size`` examples. ``token_mask`` [n,T] marks real (non-padding) tokens; products
        are restricted to them (padding carries no gradient, this only saves work)."""
        device = next(self.model.parameters()).device
        self._batch_size = batch_size
        self._out = self.projector.new_output(batch_size, device)
        self._token_mask = None if token_mask is None else token_mask.to(device=device, dtype=torch.bool)
        self._token_weights = self._token_rows = None

    def _mask_as_weights(self) -> torch.Tensor:
        """The token mask as float32 ``[n,T]`` weights (made once per batch)."""
        if self._token_weights is None:
            self._token_weights = self._token_mask.to(torch.float32)
        return self._token_weights

    def _real_tokens(self) -> tuple[list[torch.Tensor], list[int], list[bool]] | None:
        """Per example, with a token mask: the positions of its real tokens, their count, and whether they come
        first (right padding). Made once per batch, for the per-example products."""
        if self._token_mask is None:
            return None
        if self._token_rows is None:
            rows = [row.nonzero().flatten() for row in self._token_mask.cpu()]
            counts = [int(index.numel()) for index in rows]
            right = [count == 0 or int(index[-1]) == count - 1 for index, count in zip(rows, counts)]
            device = self._token_mask.device
            self._token_rows = ([index.to(device) for index in rows], counts, right)
        return self._token_rows

    def end_batch(self) -> torch.Tensor:
        """The batch's projected gradients, ``[n, dim]`` float32 (not normalised)."""
        if self._out is None:
            raise RuntimeError("end_batch() called without begin_batch().")
        out, self._out = self.projector.finalize(self._out), None
        return out

    # hooks -----------------------------------------------------------------------------------------------------
    def _make_forward_hook(self, target: TargetModule) -> Callable:
        def forward_hook(module, inputs, output):
            if self._out is None or self._recomputing or not torch.is_grad_enabled():
                return None
            x = inputs[0].detach() if inputs else None
            if target.kind == "embedding":
                replaced = False
                if output.shape[0] == 1 and self._batch_size > 1:  # shared lookups (position ids [1,T]) broadcast
                    output = output.expand(self._batch_size, *output.shape[1:])  # later; give each example its own δ
                    x = x.expand(self._batch_size, *x.shape[1:])
                    replaced = True
                if self.freeze and not output.requires_grad:
                    output = output.detach().requires_grad_(True)
                    replaced = True
                if output.requires_grad:
                    self._register_backward(target, x, output)
                return output if replaced else None
            if not output.requires_grad:
                return None
            self._register_backward(target, x, output)
            return None

        return forward_hook

    def _register_backward(self, target: TargetModule, x: torch.Tensor | None, output: torch.Tensor) -> None:
        out = self._out
        node, index = output.grad_fn, output.output_nr

        def backward_hook(grad: torch.Tensor | None) -> None:
            if out is None or grad is None:
                return
            with torch.no_grad():
                self._project(target, x, grad.detach(), out)

        if node is None:  # a leaf (a frozen embedding's output made to require grad)
            output.register_hook(backward_hook)
        else:  # a pre-hook on the node that made the output sees its gradient (cheaper than a tensor hook)
            node.register_prehook(lambda grads: backward_hook(grads[index]))

    def _factor_input(self, x: torch.Tensor, n_examples: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A layer input as ``[n,T,I]`` and the token weights that go with it (the mask, when it fits)."""
        xs = x.reshape(n_examples, -1, x.shape[-1])
        mask = self._token_mask
        return xs, mask if mask is not None and mask.shape == xs.shape[:2] else None  # padding adds nothing

    def _tokens(self, n: int, tensor: torch.Tensor) -> torch.Tensor:
        """Example ``n``'s rows of a [n,T,·] tensor, restricted to real tokens when a mask was given."""
        real = self._real_tokens()
        if real is None or tensor.ndim < 3:
            return tensor[n]
        index = real[0][n]
        if index.numel() == tensor.shape[1]:
            return tensor[n]
        if index.numel() and int(index[-1]) == index.numel() - 1:  # right padding: a slice, no copy
            return tensor[n, : index.numel()]
        return tensor[n].index_select(0, index)

    def _batched_product(
        self, kind: str, start: int, stop: int, delta: torch.Tensor, x: torch.Tensor, buffer: torch.Tensor
    ) -> bool:
        """Per-example weight gradients of examples ``start..stop`` with one batched GEMM into ``buffer``.

        One ``bmm`` over the group's padded length replaces a loop of per-example products: the same FLOPs when
        padding is small, and one parallel region instead of one per example (which matters on a loaded CPU).
        Padding adds nothing (δ is exactly zero there with right padding). Returns False, leaving the work to the
        per-example loop, when the tensors are not [n,T,·] or when padding would waste more than a quarter.
        """
        if delta.ndim != 3 or x.ndim != 3 or delta.shape[1] != x.shape[1]:
            return False
        length = delta.shape[1]
        real = self._real_tokens()
        if real is not None:
            counts = real[1][start:stop]
            length = max(counts)
            if length * (stop - start) > 1.25 * max(1, sum(counts)) or not all(real[2][start:stop]):
                return False
        d = delta[start:stop, :length].float()  # [g,L,O]
        xs = x[start:stop, :length].float()  # [g,L,I]
        n_out, n_in = d.shape[-1], xs.shape[-1]
        group = stop - start
        if kind == "linear":
            torch.bmm(d.transpose(1, 2), xs, out=buffer[:group].view(group, n_out, n_in))  # [g,O,L]×[g,L,I] → [g,O,I]
        else:  # Conv1D stores the weight transposed
            torch.bmm(xs.transpose(1, 2), d, out=buffer[:group].view(group, n_in, n_out))  # [g,I,L]×[g,L,O] → [g,I,O]
        return True

    def _project(self, target: TargetModule, x: torch.Tensor, delta: torch.Tensor, out: torch.Tensor) -> None:
        projector = self.projector
        if target.kind in ("linear", "conv1d"):
            weight_name = target.param_names.get("weight")
            bias_name = target.param_names.get("bias")
            n_examples, n_out, n_in = delta.shape[0], delta.shape[-1], x.shape[-1]
            if weight_name is not None and projector.takes_factors:
                d = delta.reshape(n_examples, -1, n_out)  # [n,T,O]
                xs, tokens = self._factor_input(x, n_examples)  # [n,T,I], [n,T] or None
                if target.kind == "linear":  # the bias rides along as the weight of a constant input
                    projector.add_outer(out, weight_name, d, xs, tokens, bias_name=bias_name)
                    bias_name = None
                else:  # Conv1D stores the weight transposed
                    projector.add_outer(out, weight_name, xs, d, tokens, delta_side="right")
            elif weight_name is not None:
                # per-example weight gradients, a group of examples at a time to bound memory
                group = max(1, min(n_examples, self.group_elements // (n_out * n_in)))
                buffer = torch.empty(group, n_out * n_in, device=delta.device, dtype=torch.float32)
                for start in range(0, n_examples, group):
                    stop = min(n_examples, start + group)
                    if self._batched_product(target.kind, start, stop, delta, x, buffer):
                        projector.add_dense(out[start:stop], weight_name, buffer[: stop - start])
                        continue
                    for row, n in enumerate(range(start, stop)):
                        d_n = self._tokens(n, delta).reshape(-1, n_out).float()  # [T,O]
                        x_n = self._tokens(n, x).reshape(-1, n_in).float()  # [T,I]
                        if target.kind == "linear":
                            torch.mm(d_n.T, x_n, out=buffer[row].view(n_out, n_in))  # [O,T]×[T,I] → [O,I]
                        else:  # Conv1D stores the weight transposed
                            torch.mm(x_n.T, d_n, out=buffer[row].view(n_in, n_out))  # [I,T]×[T,O] → [I,O]
                    projector.add_dense(out[start:stop], weight_name, buffer[: stop - start])
            if bias_name is not None:
                bias_grads = delta.float().reshape(n_examples, -1, n_out).sum(dim=1)  # [n,O] (padding has δ = 0)
                projector.add_dense(out, bias_name, bias_grads)
        elif target.kind == "embedding":
            weight_name = target.param_names["weight"]
            ids = x
            mask = self._token_mask
            if mask is None or mask.shape != ids.shape:
                mask = torch.ones_like(ids, dtype=torch.bool)
            example, position = mask.nonzero(as_tuple=True)  # the real tokens' lookups
            n_rows = target.module.weight.shape[0]
            rows = delta[example, position].float()
            projector.add_rows(out, weight_name, rows, ids[example, position], example, delta.shape[-1], n_rows)
        elif self._closed_form.get(type(target.module), True) and self._project_norm(target, x, delta, out):
            return
        else:
            self._project_generic(target, x, delta, out)

    def _project_norm(self, target: TargetModule, x: torch.Tensor, delta: torch.Tensor, out: torch.Tensor) -> bool:
        """Per-example gradients of a LayerNorm/RMSNorm in closed form. The first module of each class is also run
        through autograd (:meth:`_project_generic`) and the closed form is kept for the class only if it agrees.
        Returns False when the module is not such a norm (the caller falls back to autograd)."""
        if not set(target.param_names) <= {"weight", "bias"} or "weight" not in target.param_names:
            return False
        n, width = delta.shape[0], delta.shape[-1]
        tokens = self._token_mask
        if tokens is None or tokens.shape != delta.shape[:2]:
            tokens = torch.ones(delta.reshape(n, -1, width).shape[:2], device=delta.device)
        else:
            tokens = self._mask_as_weights()
        grads = _norm_grads(target.module, x, delta, tokens)
        if grads is None or set(grads) != set(target.param_names):
            self._closed_form[type(target.module)] = False
            return False
        kind = type(target.module)
        if kind not in self._closed_form:
            reference = self._generic_grads(target, x, delta)
            agrees = all(
                torch.allclose(grads[local], reference[local].reshape(n, width).float(), rtol=1e-3, atol=1e-6)
                for local in target.param_names
            )
            if any(bool(reference[local].any()) for local in target.param_names):  # a zero gradient proves nothing
                self._closed_form[kind] = agrees
            if not agrees:
                self._add_generic(target, reference, n, out)
                return True
        for local, canonical in target.param_names.items():
            self.projector.add_dense(out, canonical, grads[local])
        return True

    def _project_generic(self, target: TargetModule, x: torch.Tensor, delta: torch.Tensor, out: torch.Tensor) -> None:
        """Exact per-example gradients of any parameterised leaf module, by a vmapped vector-Jacobian product."""
        self._add_generic(target, self._generic_grads(target, x, delta), delta.shape[0], out)

    def _add_generic(self, target: TargetModule, grads: dict[str, torch.Tensor], n: int, out: torch.Tensor) -> None:
        for local, canonical in target.param_names.items():
            self.projector.add_dense(out, canonical, grads[local].reshape(n, -1).float())

    def _generic_grads(self, target: TargetModule, x: torch.Tensor, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{local name: [n, *param.shape]}`` per-example gradients of a leaf module, by vmapped VJPs."""
        module = target.module
        params = {local: getattr(module, local).detach() for local in target.param_names}

        def example_grad(x_n: torch.Tensor, d_n: torch.Tensor) -> dict[str, torch.Tensor]:
            _, pullback = vjp(lambda p: functional_call(module, p, (x_n[None],)), params)
            return pullback(d_n[None])[0]

        self._recomputing = True
        try:
            with torch.enable_grad():
                return vmap(example_grad)(x, delta)  # {local: [n, *param.shape]}
        finally:
            self._recomputing = False
