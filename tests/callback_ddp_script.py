"""Train a tiny model with GVendiCallback; run plainly (1 process) or under torchrun (2 CPU processes, gloo).

    python tests/callback_ddp_script.py OUTPUT_DIR 8
    python -m torch.distributed.run --nproc_per_node 2 tests/callback_ddp_script.py OUTPUT_DIR 4

The second argument is the per-device batch size: 8 on one process and 4 on each of two give the same global
batches (sequential sampling), so both runs see the same examples at the same steps. Stage ``c`` lives only in the
first batch, which under 2 processes only rank 0 sees: the ranks hold different stage sets and example counts.
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GVENDI_DISABLE_PROGRESS_BAR", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(output_dir: str, batch_size: int, dim: int) -> None:
    import torch
    from callback_helpers import PadCollator, encode, import_callbacks, model, templated_rows, tokenizer, training_args
    from datasets import Dataset
    from transformers import Trainer

    torch.set_num_threads(1)
    GVendiCallback = import_callbacks().GVendiCallback
    tok = tokenizer()
    rows = templated_rows(4, words=range(60, 90), template=1, stage="c")
    rows += templated_rows(36, words=range(10, 60), template=0, stage="a")
    rows += templated_rows(40, words=range(100, 200), template=3, stage="b")
    callback = GVendiCallback(dim=dim, stage_column="stage", ci=0.9, n_boot=20)
    distributed = (
        {"ddp_backend": "gloo", "ddp_find_unused_parameters": False}
        if int(os.environ.get("WORLD_SIZE", "1")) > 1
        else {}
    )
    trainer = Trainer(
        model=model(),
        args=training_args(output_dir, per_device_train_batch_size=batch_size, logging_steps=3, **distributed),
        train_dataset=Dataset.from_list(encode(rows, tok)),
        data_collator=PadCollator(tok.pad_token_id),
        callbacks=[callback],
    )
    callback.attach(trainer)
    trainer.train()
    if torch.distributed.is_initialized():  # tear gloo down before exit (left to the interpreter, it can abort)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 64)
