"""The GPU profile's goal in one command: SST-2 dev accuracy from the course's own pretraining, on one GPU.

Pretrains the course BERT by the gpu recipe (``pretraining.RECIPES["bert", "gpu"]``: skip-gram vectors
first, then masked LM on sst2+wiki) into a fresh directory, fine-tunes it on every SST-2 training
sentence, and scores SST-2 dev. Each stage prints its time, tokens/s, MFU and energy with the method
that measured it (NVML's energy counter where the GPU has one). The goal (benchmarks/RESULTS.md,
"Hardening", GPU figures): at least 85% within 30 minutes on one GPU. Written for a GPU session with
little device time: one command, no cache to fill first.

    COURSE_DATA_DIR=../shared/data python benchmarks/gpu_profile.py            # on the GPU machine
    COURSE_DATA_DIR=../shared/data python benchmarks/gpu_profile.py --device cpu --max-steps 20 \\
        --labels 2000 --epochs 1        # a smoke run on a CPU: about 12 minutes on 2 cores, most of it the
                                        # skip-gram stage; says nothing about accuracy

The last line is ``SST-2 dev accuracy from the course's own pretraining: X% in Y min on DEVICE``.
``--plan`` trains nothing: it counts the run's tokens, epochs and FLOPs (the trainer's accounting) and the
minutes they take on a named GPU at a given MFU, the figures a GPU run is to be held against.

    COURSE_DATA_DIR=../shared/data python benchmarks/gpu_profile.py --plan --gpu "NVIDIA H100 80GB HBM3"
"""
import argparse
import tempfile
import time
from pathlib import Path

import course_lib
from course_lib import costs, data, finetune, hardware, pretraining
from course_lib.tokenization import train_tokenizer


def stage(name: str, trainer, seconds: float) -> None:
    cost = trainer.cost
    mfu = f", MFU {100 * cost.mfu:.1f}%" if cost.mfu else ""
    print(f"{name}: {trainer.step:,} steps in {seconds / 60:.1f} min, {cost.tokens_per_second:,.0f} tokens/s"
          f"{mfu}, {cost.kwh * 1000:.1f} Wh ({cost.energy_method})", flush=True)


def plan(recipe: dict, max_steps: int, labels, epochs: int, gpu: str) -> None:
    """Print what the run will compute, counted on any machine: the figures to hold a GPU run against."""
    block, batch = recipe["block_size"], recipe["batch_size"]
    texts = pretraining.load_corpus(recipe["corpus"])
    tokenizer = train_tokenizer("bert", texts, recipe["vocab_size"])  # as pretrain() trains it
    blocks, _ = pretraining.split_blocks(pretraining.pack(tokenizer, texts, block))
    model = pretraining.build_model("bert", recipe["preset"], tokenizer, block)
    profile = costs.flops_profile(model)
    pretrain_flops = max_steps * profile.batch(batch * block, block, round(recipe["mask_rate"] * batch * block))
    lengths = [len(example["input_ids"]) for example in finetune.encode(tokenizer, labels)]
    # a classifier has no vocabulary layer: nothing is charged per prediction; padding is not counted
    finetune_flops = epochs * sum(profile.batch(n, n, 0, 1) for n in lengths)
    print(f"pretraining: {max_steps:,} steps x {batch} blocks of {block} tokens = {max_steps * batch * block:,} "
          f"tokens, {max_steps * batch / len(blocks):.1f} epochs of {len(blocks):,} blocks, {pretrain_flops:.2e} FLOPs")
    print(f"fine-tuning: {epochs} x {len(lengths):,} sentences ({sum(lengths):,} tokens), {finetune_flops:.2e} FLOPs")
    peak = hardware.gpu_spec_for(gpu).half
    if peak is None:
        raise SystemExit(f"no peak FLOP/s listed for {gpu!r}: name a GPU of hardware.GPU_SPECS")
    for mfu in (0.05, 0.2, 0.4):
        minutes = (pretrain_flops + finetune_flops) / (peak * mfu) / 60
        print(f"on {gpu} at {100 * mfu:.0f}% MFU: {minutes:.2f} min of model compute")


def main():
    recipe = dict(pretraining.RECIPES["bert", "gpu"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu (default: the GPU)")
    parser.add_argument("--precision", default="auto", help="auto | bf16 | fp16 | fp32")
    parser.add_argument("--max-steps", type=int, default=recipe["max_steps"], help="masked-LM steps")
    parser.add_argument("--labels", type=int, default=None, help="SST-2 training labels (default: all)")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning passes over the labels")
    parser.add_argument("--batch-size", type=int, default=64, help="fine-tuning batch size")
    parser.add_argument("--lr", type=float, default=2e-4, help="fine-tuning peak learning rate")
    parser.add_argument("--out", type=Path, default=None, help="where the checkpoint goes (default: a temporary "
                                                                   "directory, deleted at the end)")
    parser.add_argument("--plan", action="store_true", help="count tokens, FLOPs and minutes; train nothing")
    parser.add_argument("--gpu", default="NVIDIA H100 80GB HBM3", help="with --plan: the GPU whose peak to use")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic GPU kernels (slower: not how a speed figure should be measured)")
    args = parser.parse_args()
    course_lib.setup(deterministic=args.deterministic)
    sst2 = data.load("sst2")
    labels = args.labels or len(sst2["train"])
    train = sst2["train"].take(labels, seed=0)
    if args.plan:
        return plan(recipe, args.max_steps, train, args.epochs, args.gpu)
    device = hardware.pick_device(args.device)
    print(f"device: {device}; pretraining {args.max_steps:,} masked-LM steps by the gpu recipe, then "
          f"fine-tuning on {labels:,} SST-2 labels, {args.epochs} pass(es)", flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "bert"
        start = time.perf_counter()
        recipe.update(max_steps=args.max_steps, device=args.device, precision=args.precision)
        trainer = pretraining.pretrain(recipe.pop("arch", "bert"), recipe.pop("preset"), out, **recipe)
        pretrained = time.perf_counter()
        stage("pretraining", trainer, pretrained - start)

        model, tokenizer = finetune.load_classifier(out)
        config = finetune.recipe(labels, args.lr, epochs=args.epochs, batch_size=args.batch_size, device=args.device,
                                 precision=args.precision, progress=True)
        config.eval_every = max(1, config.max_steps // 4)
        tuned = finetune.finetune(model, tokenizer, train, sst2["dev"], config)
        stage("fine-tuning", tuned, time.perf_counter() - pretrained)

    accuracy = tuned.history["eval"][-1]["accuracy"]
    minutes = (time.perf_counter() - start) / 60
    print(f"SST-2 dev accuracy from the course's own pretraining: {100 * accuracy:.1f}% in {minutes:.1f} min "
          f"on {device}")


if __name__ == "__main__":
    main()
