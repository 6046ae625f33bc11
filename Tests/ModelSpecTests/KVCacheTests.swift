import Testing
@testable import ModelSpec

/// KV-cache bytes on worked examples, computed by hand from the architecture papers.
@Suite struct KVCacheTests {
    @Test func mlaStoresTheLatentPlusTheRopeKey() throws {
        // DeepSeek-V3: (512 + 64) values × 61 layers × 2 bytes = 70,272 bytes per token (≈ 70 KB).
        let dsv3 = try preset("deepseek-v3")
        #expect(dsv3.kvCacheBytesPerToken(.bf16) == 70_272)
        #expect(dsv3.kvCacheBytesPerToken(.fp8) == 35_136)
        #expect(dsv3.kvCacheBytes(context: 131_072, format: .bf16) == 70_272 * 131_072)
        // Kimi K2 has the same latent and one layer fewer of... the same 61 layers.
        #expect(try preset("kimi-k2").kvCacheBytesPerToken(.bf16) == 70_272)
    }

    @Test func gqaStoresKeysAndValuesPerKVHead() throws {
        // Llama 3.1 70B: 2 × 8 KV heads × 128 × 80 layers × 2 bytes = 327,680 bytes (320 KiB).
        #expect(try preset("llama3.1-70b").kvCacheBytesPerToken(.bf16) == 327_680)
        // Mixtral 8x7B: 2 × 8 × 128 × 32 × 2 = 131,072 bytes (128 KiB).
        #expect(try preset("mixtral-8x7b").kvCacheBytesPerToken(.bf16) == 131_072)
        // MLA's cache is 4.7× smaller per token than Llama 3.1 70B's GQA cache.
        #expect(try preset("llama3.1-70b").kvCacheBytesPerToken(.bf16) > 4 * preset("deepseek-v3").kvCacheBytesPerToken(.bf16))
    }

    @Test func slidingAndChunkedLayersStopGrowingAtTheirWindow() throws {
        // gpt-oss-120b: 18 full layers grow with the context, 18 sliding layers stop at 128 tokens;
        // 2 × 8 × 64 × 2 = 2,048 bytes per token per layer.
        let oss = try preset("gpt-oss-120b")
        #expect(oss.kvCacheBytes(context: 131_072, format: .bf16) == 2048 * (18 * 131_072 + 18 * 128))
        #expect(oss.kvCacheBytes(context: 100, format: .bf16) == 2048 * 36 * 100)
        // Llama 4 Maverick: 12 global layers and 36 chunked at 8,192; 2 × 8 × 128 × 2 = 4,096.
        let maverick = try preset("llama4-maverick")
        #expect(maverick.kvCacheBytes(context: 262_144, format: .bf16) == 4096 * (12 * 262_144 + 36 * 8192))
    }

    @Test func weightFormatsCountTheirScales() {
        // fp8: 1 byte per value + a float32 per 128 × 128 block; a 129-wide matrix needs 2 blocks across.
        #expect(WeightFormat.fp8.bytes(rows: 256, cols: 256) == 65_536 + 4 * 4)
        #expect(WeightFormat.fp8.bytes(rows: 128, cols: 129) == 128 * 129 + 4 * 2)
        // NVFP4: half a byte per value + 1 byte per 16 values of a row.
        #expect(WeightFormat.nvfp4.bytes(rows: 2, cols: 32) == 32 + 4)
        // MXFP4: half a byte per value + 1 byte per 32.
        #expect(WeightFormat.mxfp4.bytes(rows: 2, cols: 32) == 32 + 2)
        // INT4 group 128: half a byte per value + a bf16 scale per 128.
        #expect(WeightFormat.int4.bytes(rows: 1, cols: 256) == 128 + 4)
        // INT4 group 32: a bf16 scale per 32.
        #expect(WeightFormat.int4g32.bytes(rows: 1, cols: 256) == 128 + 16)
        #expect(WeightFormat(argument: "int4-g32") == .int4g32)
        #expect(WeightFormat(argument: "fp4") == .nvfp4)
        #expect(WeightFormat(argument: "fp16") == nil)
    }
}
