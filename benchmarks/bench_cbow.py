"""CBOW training throughput and memory: tinygrad_nlp against PyTorch CPU and gensim, same run.

Every measurement runs in a fresh subprocess (so peak memory is that configuration's own), and
the implementations alternate round by round so that machine noise hits them alike. Printed:
targets (centre words) trained per second, peak resident memory, and ratios against
tinygrad_nlp.

    python benchmarks/bench_cbow.py                          # PTB (if found), batch 1000, all installed impls
    python benchmarks/bench_cbow.py --batch-size 100 --impl ours torch
    python benchmarks/bench_cbow.py --vocab 10000 1000000 --impl ours   # cost vs vocabulary size (synthetic Zipf)
    python benchmarks/bench_cbow.py --vocab 10000 1000000 --zipf-words 10000 --impl ours  # same batches, bigger table

Implementations (PyTorch and gensim come from the ``bench`` extra when installed):
  ours        tinygrad_nlp CBOW (EmbeddingBag -> EmbeddingDot -> SigmoidCrossEntropy), Trainer.fit
  ours-loop   the same model in a plain loop: loss = model(c, t); cleargrads; backward; update
  ours2       Trainer.fit with 2 worker threads stepping shared weights (Hogwild)
  torch       nn.Embedding(sparse=True) x2, mean of contexts, bmm scores, BCE-with-logits, SparseAdam
              (all cores; torch-1t: one thread, often faster on a busy 2-core machine)
  torch-bag   the same with nn.EmbeddingBag(mode="mean") for the contexts (PyTorch's fused op)
  gensim1/2   gensim Word2Vec CBOW (sg=0, sample=0), 1 or 2 worker threads; words/s of its own loop
All neural implementations use the same data, batch, hidden size, window, negatives (drawn by the
same unigram^0.75 sampler) and optimizer (Adam, or SGD with --optimizer sgd).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- data
def find_ptb(ptb_dir):
    for d in (ptb_dir, os.environ.get("TINYGRAD_NLP_PTB_DIR"), os.path.join(HERE, "..", "..", "shared", "data", "ptb")):
        if d and os.path.exists(os.path.join(d, "ptb.train.txt")):
            return d
    return None


def zipf_corpus(vocab, tokens, seed=0):
    """A synthetic corpus whose word frequencies follow Zipf's law over ``vocab`` words."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab + 1)
    cdf = np.cumsum(weights / weights.sum())
    corpus = np.searchsorted(cdf, rng.random(tokens)).astype(np.int32)
    np.minimum(corpus, vocab - 1, out=corpus)
    return corpus


def load_data(args):
    from tinygrad_nlp.text import create_contexts_target, load_ptb

    if args.vocab_size:
        V = args.vocab_size
        words = min(args.zipf_words or V, V)
        corpus = zipf_corpus(words, args.tokens)
        if words < V:  # the same text, its words scattered over a V-row table
            corpus = np.random.default_rng(1).permutation(V)[:words].astype(np.int32)[corpus]
        name = f"zipf over {words:,} words, V={V:,}"
    else:
        ptb = find_ptb(args.ptb_dir)
        if ptb is None:
            raise SystemExit("PTB not found: pass --ptb-dir, set TINYGRAD_NLP_PTB_DIR, or use --vocab N")
        corpus, w2i, _ = load_ptb("train", data_dir=ptb)
        V, name = len(w2i), "PTB train"
    contexts, target = create_contexts_target(corpus, args.window)
    return corpus, contexts, target, V, name


# ----------------------------------------------------------------------------- children
def rss_peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_steps(step, warmup, steps):
    """Run ``step(i)`` for ``warmup`` untimed then the remaining steps timed; seconds taken."""
    for i in range(warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(warmup, steps):
        step(i)
    return time.perf_counter() - t0


def rows_touched(corpus, c_all, t_all, V, args, batches=50):
    """Mean distinct rows a step updates (context rows of W_in plus target and negative rows of
    W_out) over the first ``batches`` batches: the work of a sparse step, whatever V is. The
    negatives come from a sampler of their own, so training's draws are untouched."""
    from tinygrad_nlp.text import UnigramSampler

    sampler = UnigramSampler.from_counts(np.bincount(corpus, minlength=V), sample_size=args.negative, seed=1)
    B, counts = args.batch_size, []
    for i in range(min(batches, len(t_all) // B)):
        c, t = c_all[i * B:(i + 1) * B], t_all[i * B:(i + 1) * B]
        scored = np.concatenate([t, sampler.get_negative_sample(t).ravel()])
        counts.append(np.unique(c).size + np.unique(scored).size)
    return float(np.mean(counts)) if counts else float("nan")


def child_ours(args, loop=False, workers=1):
    from tinygrad_nlp.models import CBOW
    from tinygrad_nlp.optimizers import SGD, Adam
    from tinygrad_nlp.train import Trainer

    corpus, contexts, target, V, _ = load_data(args)
    model = CBOW(V, args.hidden, args.window, corpus, sample_size=args.negative, seed=0)
    opt = (Adam(lr=0.001) if args.optimizer == "adam" else SGD(lr=1.0)).setup(model)
    B = args.batch_size
    rng = np.random.default_rng(0)
    n = min(len(target), (args.steps + args.warmup) * B)
    order = rng.permutation(len(target))[:n]
    c_all, t_all = contexts[order], target[order]
    warm = args.warmup * B
    if loop:
        def step(i):
            c, t = c_all[i * B:(i + 1) * B], t_all[i * B:(i + 1) * B]
            loss = model(c, t)
            model.cleargrads()
            loss.backward()
            opt.update()

        seconds = time_steps(step, args.warmup, n // B)
        done = (n // B - args.warmup) * B
    else:
        trainer = Trainer(model, opt, progress=False, workers=workers)
        trainer.fit(c_all[:warm], t_all[:warm], max_epoch=1, batch_size=B, shuffle=False)
        trainer = Trainer(model, opt, progress=False, workers=workers)
        trainer.fit(c_all[warm:], t_all[warm:], max_epoch=1, batch_size=B, shuffle=False)
        seconds, done = trainer.seconds, trainer.targets_seen
    state = sum(a.nbytes for st in opt.state.values() for a in st.values())
    params = sum(p.data.nbytes for p in model.params())
    peak = rss_peak_bytes()  # before rows_touched, which allocates nothing of note but is not a step
    return {"targets_per_s": done / seconds, "ms_per_step": 1e3 * seconds * B / done, "peak_rss": peak,
            "param_bytes": params, "state_bytes": state, "rows_per_step": rows_touched(corpus, c_all, t_all, V, args)}


def child_torch(args, bag=False, threads=None):
    import torch
    import torch.nn as nn
    import torch.nn.functional as TF

    from tinygrad_nlp.text import UnigramSampler

    torch.set_num_threads(threads or os.cpu_count() or 1)
    corpus, contexts, target, V, _ = load_data(args)
    H, B, K = args.hidden, args.batch_size, args.negative
    sampler = UnigramSampler.from_counts(np.bincount(corpus, minlength=V), sample_size=K, seed=0)
    torch.manual_seed(0)
    emb_in = (nn.EmbeddingBag(V, H, mode="mean", sparse=True) if bag else nn.Embedding(V, H, sparse=True))
    emb_out = nn.Embedding(V, H, sparse=True)
    with torch.no_grad():
        emb_in.weight.uniform_(-0.5 / H, 0.5 / H)
        emb_out.weight.zero_()
    params = list(emb_in.parameters()) + list(emb_out.parameters())
    opt = torch.optim.SparseAdam(params, lr=0.001) if args.optimizer == "adam" else torch.optim.SGD(params, lr=1.0)
    rng = np.random.default_rng(0)
    n = min(len(target), (args.steps + args.warmup) * B)
    order = rng.permutation(len(target))[:n]
    c_all, t_all = contexts[order], target[order]
    labels = torch.zeros(B, K + 1)
    labels[:, 0] = 1

    def step(i):
        c, t = c_all[i * B:(i + 1) * B], t_all[i * B:(i + 1) * B]
        neg = sampler.get_negative_sample(t)
        idx = torch.from_numpy(np.concatenate([t[:, None], neg], axis=1).astype(np.int64))
        ct = torch.from_numpy(c.astype(np.int64))
        h = emb_in(ct) if bag else emb_in(ct).mean(dim=1)
        w = emb_out(idx)
        scores = torch.bmm(w, h.unsqueeze(2)).squeeze(2)
        loss = TF.binary_cross_entropy_with_logits(scores, labels[: len(t)], reduction="sum") / len(t)
        opt.zero_grad()
        loss.backward()
        opt.step()

    seconds = time_steps(step, args.warmup, n // B)
    done = (n // B - args.warmup) * B
    return {"targets_per_s": done / seconds, "ms_per_step": 1e3 * seconds * B / done, "peak_rss": rss_peak_bytes()}


def child_gensim(args, workers):
    from gensim.models import Word2Vec

    corpus, _, _, V, _ = load_data(args)
    words = corpus.astype(str)
    # gensim streams sentences; cut the corpus into 20-token sentences (PTB's average length).
    sentences = [list(words[i:i + 20]) for i in range(0, len(words), 20)]
    model = Word2Vec(vector_size=args.hidden, window=args.window, negative=args.negative, sg=0, min_count=1,
                     sample=0, workers=workers, seed=1)
    model.build_vocab(sentences)
    t0 = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=1)
    seconds = time.perf_counter() - t0
    return {"targets_per_s": len(corpus) / seconds, "ms_per_step": float("nan"), "peak_rss": rss_peak_bytes()}


CHILDREN = {
    "ours": lambda a: child_ours(a),
    "ours-loop": lambda a: child_ours(a, loop=True),
    "ours2": lambda a: child_ours(a, workers=2),
    "torch": lambda a: child_torch(a),
    "torch-1t": lambda a: child_torch(a, threads=1),
    "torch-bag": lambda a: child_torch(a, bag=True),
    "torch-bag-1t": lambda a: child_torch(a, bag=True, threads=1),
    "gensim1": lambda a: child_gensim(a, 1),
    "gensim2": lambda a: child_gensim(a, 2),
}


def available(impl):
    mod = "torch" if impl.startswith("torch") else "gensim" if impl.startswith("gensim") else None
    if mod is None:
        return True
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def run_child(impl, args, vocab):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", impl, "--batch-size", str(args.batch_size),
           "--hidden", str(args.hidden), "--window", str(args.window), "--negative", str(args.negative),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--optimizer", args.optimizer,
           "--tokens", str(args.tokens)]
    if vocab:
        cmd += ["--vocab-size", str(vocab)]
    if args.zipf_words:
        cmd += ["--zipf-words", str(args.zipf_words)]
    if args.ptb_dir:
        cmd += ["--ptb-dir", args.ptb_dir]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", nargs="*", default=["ours", "ours-loop", "torch", "torch-1t", "torch-bag", "torch-bag-1t",
                                                 "gensim1", "gensim2"])
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--steps", type=int, default=300, help="timed steps per run (after --warmup steps)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    p.add_argument("--vocab", type=int, nargs="*", default=None, help="synthetic Zipf vocabulary sizes instead of PTB")
    p.add_argument("--tokens", type=int, default=1_000_000, help="synthetic corpus length")
    p.add_argument("--zipf-words", type=int, default=None,
                   help="draw the synthetic text from this many words (scattered over the V rows), so that "
                        "every V trains on the same batches; default: Zipf over all V words")
    p.add_argument("--ptb-dir", default=None)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--vocab-size", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    impls = [i for i in args.impl if available(i)]
    skipped = [i for i in args.impl if i not in impls]
    vocabs = args.vocab or [None]
    results = {}
    for _ in range(args.rounds):
        for vocab in vocabs:
            for impl in impls:
                r = run_child(impl, args, vocab)
                key = (impl, vocab)
                if key not in results or r["targets_per_s"] > results[key]["targets_per_s"]:
                    results[key] = r
    data = f"synthetic Zipf corpus of {args.tokens:,} tokens" if args.vocab else "PTB train"
    if args.vocab and args.zipf_words:
        data += f" over {args.zipf_words:,} words scattered across the V rows"
    print(f"CBOW, {data}: batch {args.batch_size}, hidden {args.hidden}, window {args.window}, "
          f"{args.negative} negatives, {args.optimizer}, float32; best of {args.rounds} alternating rounds, "
          f"{os.cpu_count()} cores")
    if skipped:
        print(f"(not installed: {', '.join(skipped)}; pip install 'tinygrad_nlp[bench]')")
    for vocab in vocabs:
        base = results[("ours", vocab)]["targets_per_s"] if ("ours", vocab) in results else None
        if vocab:
            print(f"V = {vocab:,}")
        print(f"  {'implementation':12s} {'targets/s':>12s} {'ms/step':>8s} {'peak RSS':>10s} {'ours / it':>10s}")
        for impl in impls:
            r = results[(impl, vocab)]
            ratio = f"{base / r['targets_per_s']:9.2f}x" if base else ""
            print(f"  {impl:12s} {r['targets_per_s']:12,.0f} {r['ms_per_step']:8.2f} "
                  f"{r['peak_rss'] / 2**20:8,.0f} MB {ratio}")
        torch_best = max((results[(i, vocab)]["targets_per_s"] for i in impls if i.startswith("torch")), default=None)
        if base and torch_best:
            goal = " (goal >= 2.5x)" if args.optimizer == "adam" else ""
            print(f"  ours / best PyTorch configuration: {base / torch_best:.2f}x{goal}")
        for mine, theirs in (("ours", "gensim1"), ("ours2", "gensim2")):
            if (mine, vocab) in results and (theirs, vocab) in results:
                print(f"  {mine} / {theirs} (same number of threads): "
                      f"{results[(mine, vocab)]['targets_per_s'] / results[(theirs, vocab)]['targets_per_s']:.2f}x "
                      "(goal >= 1.0x)")
        if ("ours", vocab) in results and ("ours2", vocab) in results:
            print(f"  2 workers / 1 worker: "
                  f"{results[('ours2', vocab)]['targets_per_s'] / results[('ours', vocab)]['targets_per_s']:.2f}x")
        if base and ("gensim2", vocab) in results:
            print(f"  ours / gensim with 2 workers: {base / results[('gensim2', vocab)]['targets_per_s']:.2f}x "
                  "(stretch goal >= 0.25x)")
        if ("ours", vocab) in results:
            r = results[("ours", vocab)]
            budget = r["param_bytes"] + r["state_bytes"]
            print(f"  ours: parameters + optimizer state {budget / 2**20:,.0f} MB; peak RSS is "
                  f"{r['peak_rss'] / budget:.2f}x that")
    if len(vocabs) > 1 and all(("ours", v) in results for v in vocabs):
        small, large = min(vocabs), max(vocabs)
        big, few = results[("ours", large)], results[("ours", small)]
        ratio = big["ms_per_step"] / few["ms_per_step"]
        print(f"step time at V = {large:,} is {ratio:.2f}x the step time at V = {small:,} (goal <= 1.5x)")
        rows = big["rows_per_step"] / few["rows_per_step"]
        print(f"rows updated per step: {few['rows_per_step']:,.0f} at V = {small:,}, {big['rows_per_step']:,.0f} at "
              f"V = {large:,} ({rows:.2f}x); time per updated row: {ratio / rows:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{k[0]}@{k[1]}": v for k, v in results.items()}, f, indent=2)


if __name__ == "__main__":
    main()
