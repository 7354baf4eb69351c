using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>
/// The one check a generate request passes before anything that grows with it is allocated: its KV caches, the
/// weights and a row of logits per sequence against the memory the backend has, refused with both numbers.
/// </summary>
internal static class Admission
{
    public static void Check(Backend backend, ModelInfo info, IReadOnlyList<int[]> prompts, int maxNewTokens)
    {
        var longest = prompts.Max(p => p.Length);
        info.CheckedCachePositions(longest, maxNewTokens); // the context first: a clearer reason than memory
        var kv = info.KvCacheBytes(longest, maxNewTokens, prompts.Count);
        var weights = info.TotalParameters * sizeof(float); // at most: bf16 panels take half
        var logits = (long)prompts.Count * info.VocabSize * sizeof(float);
        var need = kv + weights + logits;
        if (need > backend.CapacityBytes)
        {
            throw new CliException($"this request needs about {ByteText.Format(need)} ({ByteText.Format(kv)} of KV cache for {prompts.Count} sequence{(prompts.Count == 1 ? string.Empty : "s")} of up to {longest} + {maxNewTokens} tokens, {ByteText.Format(weights)} of weights), "
                + $"more than the {ByteText.Format(backend.CapacityBytes)} of {(backend.IsGpu ? "device " : string.Empty)}memory here: give fewer or shorter prompts or a smaller --max-new-tokens.");
        }
    }
}
