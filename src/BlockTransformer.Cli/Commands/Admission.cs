using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>
/// The one check a generate request passes before anything that grows with it is allocated: its KV caches, the
/// weights and a row of logits per sequence against the memory the backend has, refused with both numbers.
/// </summary>
internal static class Admission
{
    public static void Check(Backend backend, ModelInfo info, int longestPrompt, int maxNewTokens, int batch, string remedy)
    {
        info.CheckedCachePositions(longestPrompt, maxNewTokens); // the context first: a clearer reason than memory
        var kv = info.KvCacheBytes(longestPrompt, maxNewTokens, batch);
        var weights = info.TotalParameters * sizeof(float); // at most: bf16 panels take half
        var logits = (long)batch * info.VocabSize * sizeof(float);
        var need = kv + weights + logits;
        if (need > backend.CapacityBytes)
        {
            throw new CliException($"this request needs about {ByteText.Format(need)} ({ByteText.Format(kv)} of KV cache for {batch} sequence{(batch == 1 ? string.Empty : "s")} of up to {longestPrompt} + {maxNewTokens} tokens, {ByteText.Format(weights)} of weights of {info.Name}), "
                + $"more than the {ByteText.Format(backend.CapacityBytes)} of {(backend.IsGpu ? "device " : string.Empty)}memory here: {remedy}.");
        }
    }
}
