#!/usr/bin/env python3
"""Builds configs/validation/serving-holdout.json from InferenceX runs that no factor was taken from.

Input: configs/validation/sources/inferencex-dsr1-2026.txt, one InferenceX run per line, fields
separated by spaces, transcribed from SemiAnalysisAI/InferenceX-app
packages/app/cypress/fixtures/api/benchmarks.json @ 3a600f1d (the InferenceX nightly results
snapshot that the ten runs of serving.json also come from): every DeepSeek-R1 run dated 2026 or
later at 1K/1K or 8K/1K. The ten rows of serving.json are left out (other concurrencies of
the same sweeps stay: nothing was read from them), and so are the 12 MoRI runs whose pools list
expert parallelism wider than tensor parallelism without DP attention.

What a run's line does not say is filled the same way for every run, as the ten curated entries
do (docs/validation.md, "The held-out set"):
- the client: InferenceX's benchmark scripts (--random-range-ratio 0.8 on both lengths,
  --num-prompts 10 × concurrency, --request-rate inf);
- weights: fp8 is DeepSeek's 128 × 128 block checkpoint; fp4 is NVFP4 on NVIDIA and MXFP4 on AMD
  (amd/DeepSeek-R1-0528-MXFP4), the checkpoints those recipes load, AMD's with attention in bf16,
  NVIDIA's v2 with the attention's q/kv projections in bf16 and o_proj in FP4;
- the layout from the run's tp / ep / dp-attention: tp GPUs per engine, attention=dp (tp=1) or
  attention=tp (tp), experts spread over ep of them and cut over the rest (moe_tp = tp / ep);
- SGLang on MI325X and MI355X with FP8 decodes in runs of 4 steps (--num-continuous-decode-steps 4
  in InferenceX's dsr1_fp8_mi325x.sh and dsr1_fp8_mi355x.sh); other recipes were not read;
- SGLang on B200 without MTP or DP attention reads new requests every 10 decode steps, 30 at TP8
  from a concurrency of 16 (--scheduler-recv-interval in InferenceX's dsr1_fp8_b200.sh and
  dsr1_fp4_b200.sh; added after the first pass over this set, see docs/validation.md);
- no engine cap (max running requests) is known, so none is set: the engine holds what fits;
- the KV-cache format, MTP draft count and SGLang's memory fraction where the recipes state them
  (second pass; see the comments below); otherwise the estimator's defaults (bf16 KV, 1 draft,
  a 10% memory reserve) and its acceptance;
- an expert-parallel group that does not divide the 256 experts runs EPLB (256 + 32 slots).

Usage: scripts/inferencex-holdout.py > configs/validation/serving-holdout.json
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "configs/validation/sources/inferencex-dsr1-2026.txt")
CURATED = os.path.join(ROOT, "configs/validation/serving.json")
FIELDS = ("hardware framework precision spec disagg ptp pep pdp pnw dtp dep ddp dnw npg ndg isl osl conc date "
          "ttft tpot intvty tput in_tput out_tput run image").split()
GPUS = {"h100": "h100-sxm", "h200": "h200-sxm", "b200": "b200", "b300": "b300", "gb200": "gb200",
        "gb300": "gb300", "mi300x": "mi300x", "mi325x": "mi325x", "mi355x": "mi355x"}


def number(text):
    return None if text == "-" else float(text)


def layout(tp, ep, dp):
    """tp is the engine's GPU count (the DP size under DP attention); experts not spread over all
    of them by ep are cut over the rest (moe_tp = tp / ep), as SGLang and TensorRT-LLM do."""
    cut = {"moe_tp": tp // ep} if 0 < ep < tp else {}
    if dp:
        return {"attention": "dp", "tp": 1, "ep": ep, "pp": 1, **cut}
    return {"attention": "tp", "tp": tp, "ep": ep, "pp": 1, **cut}


def describe(tp, ep, dp):
    # Under DP attention the engine is max(tp, ep) GPUs wide (some pools list tp 1).
    return f"dp{max(tp, ep)}ep{ep}" if dp else f"tp{tp}ep{ep}"


def run_key(e):
    """What identifies one measured row: the workflow run (which covers many configurations), the
    configuration and the concurrency."""
    shape = e.get("disaggregated") or e.get("layout")
    return (e["source"].rsplit("run ", 1)[-1].strip(), e["gpu"], e["framework"], e["weights"], "mtp" in e["features"],
            e["gpus"], e["concurrency"], e["input_tokens"], json.dumps(shape, sort_keys=True))


def main():
    curated_runs = {run_key(e) for e in json.load(open(CURATED))["entries"]}
    entries, seen, skipped = [], set(), []
    for line in open(SOURCE):
        if not line.strip() or line.startswith("#"):
            continue
        values = line.split()
        if len(values) != len(FIELDS):
            skipped.append((line.strip(), "field count"))
            continue
        r = dict(zip(FIELDS, values))
        gpu = GPUS.get(r["hardware"])
        if gpu is None:
            skipped.append((line.strip(), "unknown hardware"))
            continue
        ints = {k: int(r[k]) for k in "ptp pep pnw dtp dep dnw npg ndg isl osl conc".split()}
        disagg = r["disagg"] == "true"
        amd = r["hardware"].startswith("mi")
        weights = r["precision"] if r["precision"] != "fp4" else ("mxfp4" if amd else "fp4")
        mtp = r["spec"] not in ("none", "-")
        # A single-node run is one engine of tp GPUs; the results' GPU count is tp × ep there.
        gpus = ints["npg"] + ints["ndg"] if disagg else ints["dtp"]
        # Expert parallelism wider than the tensor-parallel group without DP attention (some MoRI
        # pools list tp 1, ep 8) does not say how attention is cut: left out.
        if any(dp != "true" and tp < ep for tp, ep, dp in ((ints["ptp"], ints["pep"], r["pdp"]), (ints["dtp"], ints["dep"], r["ddp"]))
               if disagg or tp == ints["dtp"]):
            skipped.append((line.strip(), "ep wider than tp without DP attention"))
            continue
        lengths = f"{ints['isl'] // 1024}k{ints['osl'] // 1024}k"
        shape = describe(ints["dtp"], ints["dep"], r["ddp"] == "true")
        if disagg:
            shape = f"{ints['pnw']}p{describe(ints['ptp'], ints['pep'], r['pdp'] == 'true')}-" \
                    f"{ints['dnw']}d{shape}"
        ident = f"ix-{r['hardware']}-{r['framework']}-{r['precision']}{'-mtp' if mtp else ''}-{shape}-{lengths}-c{ints['conc']}"
        if ident in seen:
            skipped.append((line.strip(), "duplicate configuration"))
            continue
        seen.add(ident)
        e = {"id": ident, "kind": "measured",
             "source": f"InferenceX run {r['run']}",
             "framework": r["framework"], "date": r["date"], "model": "deepseek-r1", "gpu": gpu}
        e["gpus"] = gpus
        e["weights"] = weights
        # The FP4 checkpoints keep attention apart: amd/DeepSeek-R1-0528-MXFP4 was quantized
        # from bf16 with --exclude_layers "*self_attn* *mlp.gate.* *lm_head" (all of it bf16);
        # nvidia/DeepSeek-R1-0528-NVFP4-v2, which the NVIDIA recipes load, keeps the q/kv
        # projections in bf16 and quantizes o_proj (corrections 11 and 13 in docs/validation.md).
        if weights == "mxfp4":
            e["attention_weights"] = "bf16"
        elif weights == "fp4":
            e["attention_weights"] = "bf16-qkv"
        # The KV-cache format the recipes pass (fp8_e4m3 / fp8 in every version of InferenceX's
        # SGLang B200, B300 and MI3xx, TensorRT-LLM, ATOM and MoRI recipes read); the Dynamo-SGLang
        # recipes differ by system and H200's SGLang recipe keeps bf16.
        if r["framework"] in ("trt", "dynamo-trt", "atom", "mori-sglang") or \
                (r["framework"] == "sglang" and r["hardware"] != "h200"):
            e["kv_cache"] = "fp8"
        if disagg:
            e["disaggregated"] = {
                "prefill": {"gpus": ints["npg"], "workers": max(ints["pnw"], 1),
                            "layout": layout(ints["ptp"], ints["pep"], r["pdp"] == "true")},
                "decode": {"gpus": ints["ndg"], "workers": max(ints["dnw"], 1),
                           "layout": layout(ints["dtp"], ints["dep"], r["ddp"] == "true")}}
        else:
            e["layout"] = layout(ints["dtp"], ints["dep"], r["ddp"] == "true")
        e["features"] = ["mtp"] if mtp else []
        # Draft tokens per step where every version of the recipe read says the same: SGLang's
        # EAGLE 2 steps on NVIDIA (single node and Dynamo), 3 on MI355X; TensorRT-LLM single node
        # 3 (1 with DP attention); ATOM FP8 3. Others keep the estimator's default (1).
        drafts = None
        if mtp:
            if r["framework"] in ("sglang", "dynamo-sglang") and not amd:
                drafts = 2
            elif r["framework"] == "sglang" and r["hardware"] == "mi355x":
                drafts = 3
            elif r["framework"] == "trt":
                drafts = 1 if r["ddp"] == "true" else 3
            elif r["framework"] == "atom" and r["precision"] == "fp8":
                drafts = 3
        if drafts:
            e["mtp_draft_tokens"] = drafts
        # An expert-parallel group that does not divide DeepSeek's 256 experts runs EPLB's 288
        # slots (256 + 32 redundant, TensorRT-LLM's wide-EP recipes).
        pools = [e["disaggregated"]["prefill"]["layout"], e["disaggregated"]["decode"]["layout"]] if disagg else [e["layout"]]
        if any(256 % p["ep"] for p in pools):
            e["features"].append("eplb")
        e.update({"phase": "serving", "input_tokens": ints["isl"], "output_tokens": ints["osl"],
                  "input_range": [0.8, 1.0], "output_range": [0.8, 1.0], "concurrency": ints["conc"],
                  "num_prompts": 10 * ints["conc"]})
        # TensorRT-LLM runs its context steps eagerly unless piecewise CUDA graphs are on
        # (ServingFramework.tensorrtLLM); InferenceX's dsr1_fp4_b200_trt.sh turns them on for
        # 1K/1K at TP 8 and EP 8, DP attention or not (the curated run of that shape shows it: 73
        # ms to the first token against 140-150 ms at TP4 and TP8 EP1). The FP8 script's versions
        # differ (none, or from a concurrency of 64) and the MTP script's turns them on by
        # concurrency; the runs do not say which version ran, so those keep the default.
        if r["framework"] == "trt" and r["precision"] == "fp4" and not mtp and ints["isl"] == 1024 \
                and ints["dtp"] == 8 and ints["dep"] == 8:
            e["eager_prefill"] = False
        if r["framework"] == "sglang" and r["hardware"] in ("mi325x", "mi355x") and r["precision"] == "fp8":
            e["continuous_decode_steps"] = 4
        if r["framework"] == "sglang" and r["hardware"] == "b200" and not mtp and r["ddp"] != "true":
            e["scheduler_recv_interval"] = 30 if ints["dtp"] == 8 and ints["conc"] >= 16 else 10
        # The share of memory SGLang's single-node recipes leave outside its static pool
        # (1 − --mem-fraction-static, the same in every version read): FP8 on B200/B300 0.82 at
        # TP8 and 0.95 at TP4 (with or without MTP), FP4 there 0.85 without MTP, H200 0.82,
        # MI300X/MI325X/MI355X 0.8.
        if r["framework"] == "sglang" and r["ddp"] != "true":
            fraction = None
            if r["hardware"] in ("b200", "b300") and r["precision"] == "fp8":
                fraction = 0.95 if ints["dtp"] == 4 else 0.82
            elif r["hardware"] in ("b200", "b300") and r["precision"] == "fp4" and not mtp:
                fraction = 0.85
            elif r["hardware"] == "h200":
                fraction = 0.82
            elif amd:
                fraction = 0.8
            if fraction:
                e["memory_reserve"] = round(1 - fraction, 2)
        if run_key(e) in curated_runs:
            continue
        output, total = number(r["out_tput"]), number(r["tput"])
        also = {}
        if output is not None:
            e["metric"] = "output_tokens_per_s_per_decode_gpu" if disagg else "output_tokens_per_s_per_gpu"
            e["value"] = output
            if total is not None:
                also["total_tokens_per_s_per_gpu"] = total
        elif total is not None:
            e["metric"], e["value"] = "total_tokens_per_s_per_gpu", total
        else:
            skipped.append((line.strip(), "no throughput"))
            continue
        for key, field in (("input_tokens_per_s_per_prefill_gpu" if disagg else "input_tokens_per_s_per_gpu", "in_tput"),
                           ("output_tokens_per_s_per_user", "intvty"), ("ttft_s", "ttft"), ("tpot_s", "tpot")):
            value = number(r[field])
            if value is not None:
                also[key] = value
        e["also"] = also
        entries.append(e)
    for line, why in skipped:
        print(f"skipped ({why}): {line}", file=sys.stderr)
    notes = ("Held out: no factor was taken from these runs. Source: SemiAnalysisAI/InferenceX-app "
             "packages/app/cypress/fixtures/api/benchmarks.json @3a600f1d (run = github.com/SemiAnalysisAI/"
             "InferenceX/actions/runs/<id>). Recipe details the results do not give are filled as "
             "scripts/inferencex-holdout.py says: KV-cache format, draft count, receive interval and SGLang's "
             "memory fraction where the recipes state them, the estimator's defaults otherwise (engine cap).")
    sys.stdout.write('{"schema": "moesim-measurements/1",\n "notes": ' + json.dumps(notes) + ',\n "entries": [\n')
    sys.stdout.write(",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in entries))
    sys.stdout.write("\n ]}\n")


if __name__ == "__main__":
    main()
