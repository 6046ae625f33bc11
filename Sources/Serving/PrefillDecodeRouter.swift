/// What sits in front of disaggregated prefill and decode servers, and when it lets the decode
/// server's answer through to the client. `--pd-router` on the command line and a measurements
/// file's `pd_router` (else its `framework`) resolve here.
public enum PrefillDecodeRouter: String, Sendable, CaseIterable {
    /// SGLang's PD router (`sglang_router --pd-disaggregation`, the Rust `sgl-model-gateway`):
    /// it sends a request to a prefill and a decode server at once and drains the prefill
    /// server's response before it streams the decode server's (`pd_router.rs`,
    /// `process_prefill_response`). A prefill server completes that response only when its
    /// scheduler loop, once per iteration after the step it ran, polls the request's KV transfer
    /// as done (`disaggregation/prefill.py`, `process_disagg_prefill_inflight_queue`): a busy
    /// server answers one step late. SGLang issue #22853 measures about 200 ms of TTFT over
    /// aggregated serving at 12K-token prompts, mostly this wait; PR #24812 puts it at up to one
    /// prefill forward. InferenceX's MI355X MoRI-SGLang runs use this router.
    case sglang
    /// NVIDIA Dynamo's frontend: for SGLang workers it computes the bootstrap address up front,
    /// runs the prefill in the background and streams the decode worker's tokens at once
    /// (`kv_router/prefill_router.rs`, "Bootstrap optimization path", since PR #4635); for
    /// TensorRT-LLM workers it sends the decode request once the prefill has returned its first
    /// token and KV parameters. Either way no prefill response holds the first token back
    /// beyond the KV transfer moesim already prices.
    case dynamo

    /// The router a benchmark names in its framework: InferenceX's `dynamo-sglang` and
    /// `dynamo-trt` run Dynamo's frontend, `mori-sglang` (and a plain `sglang` split into pools)
    /// SGLang's router; nil for others.
    public init?(framework name: String) {
        let n = name.lowercased()
        if n.contains("dynamo") { self = .dynamo }
        else if n.contains("sglang") { self = .sglang }
        else { return nil }
    }

    /// Whether the client's first token waits for the prefill server's response.
    public var firstTokenWaitsForPrefillResponse: Bool { self == .sglang }
}
