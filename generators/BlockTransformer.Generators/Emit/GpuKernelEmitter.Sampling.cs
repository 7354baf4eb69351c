using BlockTransformer.Generators.Helpers;

namespace BlockTransformer.Generators.Emit;

// Sampling on the GPU: per-chunk top-k and greedy candidates, then one pass that samples from them.
internal sealed partial class GpuKernelEmitter
{
    /// <summary>Logits one sampling thread scans for its top-k candidates.</summary>
    public const int SampleChunk = 256;

    /// <summary>
    /// Sampling, step 1: thread (chunk, row) keeps the top-k logits of its <see cref="SampleChunk"/> ids,
    /// sorted, earlier ids first among equal values (so top-1 is the CPU's lowest-id argmax).
    /// </summary>
    public string TopKCandidates() => Request(
        "TopKCandidates",
        "Index2D",
        new[] { "ArrayView<float> logits", "ArrayView<float> values", "ArrayView<int> ids", "int k" },
        $"Sampling step 1: the k largest logits of ids [{SampleChunk}·chunk, {SampleChunk}·(chunk + 1)) of one row, sorted; thread (chunk, row).",
        w =>
        {
            w.Line("var chunk = index.X;");
            w.Line("var row = index.Y;");
            w.Line("var best = LocalMemory.Allocate<float>(GpuModel.MaxTopK);");
            w.Line("var bestIds = LocalMemory.Allocate<int>(GpuModel.MaxTopK);");
            w.Line("var count = 0;");
            w.Line($"var end = XMath.Min(VocabSize, (chunk + 1) * {SampleChunk});");
            using (w.Block($"for (var id = chunk * {SampleChunk}; id < end; id++)"))
            {
                w.Line("count = InsertCandidate(best, bestIds, count, k, logits[((long)row * VocabSize) + id], id);");
            }

            w.Line($"long output = (((long)row * SampleChunks) + chunk) * GpuModel.MaxTopK;");
            using (w.Block("for (var i = 0; i < k; i++)"))
            {
                w.Line("values[output + i] = i < count ? best[i] : float.NegativeInfinity;");
                w.Line("ids[output + i] = i < count ? bestIds[i] : -1;");
            }
        });

    /// <summary>
    /// Greedy sampling, step 1: the largest logit of each <see cref="SampleChunk"/> ids and its id, the lowest id
    /// among equals, NaN skipped (the CPU's greedy pick), written as the chunk's only candidate. One warp per
    /// (chunk, row): lanes read the chunk coalesced and merge with shuffles. ncu put the general top-k kernel,
    /// one thread scanning each chunk, at 46 µs per token at batch 1 (197 threads for a 50304-id row).
    /// </summary>
    public string GreedyCandidates() => Request(
        "GreedyCandidates",
        null,
        new[] { "ArrayView<float> logits", "ArrayView<float> values", "ArrayView<int> ids" },
        $"Greedy step 1: the largest logit of ids [{SampleChunk}·chunk, {SampleChunk}·(chunk + 1)) of one row and its lowest id; one warp per (chunk, row).",
        w =>
        {
            w.Line("var chunk = Grid.IdxX;");
            w.Line("var row = Grid.IdxY;");
            w.Line("var lane = Group.IdxX;");
            w.Line("var best = float.NegativeInfinity;");
            w.Line("var bestId = -1; // none yet: a lane whose logits are all NaN keeps it and never wins below");
            w.Line($"var end = XMath.Min(VocabSize, (chunk + 1) * {SampleChunk});");
            using (w.Block($"for (var id = (chunk * {SampleChunk}) + lane; id < end; id += {WarpSize})"))
            {
                w.Line("var value = logits[((long)row * VocabSize) + id];");
                using (w.Block("if (value > best || (bestId < 0 && !float.IsNaN(value))) // ids rise, so equals keep the first"))
                {
                    w.Line("best = value;");
                    w.Line("bestId = id;");
                }
            }

            using (w.Block($"for (var mask = {WarpSize / 2}; mask > 0; mask >>= 1)"))
            {
                w.Line("var otherValue = Warp.ShuffleXor(best, mask);");
                w.Line("var otherId = Warp.ShuffleXor(bestId, mask);");
                using (w.Block("if (otherId >= 0 && (bestId < 0 || otherValue > best || (otherValue == best && otherId < bestId)))"))
                {
                    w.Line("best = otherValue;");
                    w.Line("bestId = otherId;");
                }
            }

            using (w.Block("if (lane == 0)"))
            {
                w.Line("long output = (((long)row * SampleChunks) + chunk) * GpuModel.MaxTopK;");
                w.Line("values[output] = best;");
                w.Line("ids[output] = bestId;");
            }
        });

    /// <summary>
    /// Sampling, step 2: one warp per row. Lane l merges the candidates of its contiguous run of chunks (in id
    /// order, so equal values keep the earlier id), writes its top k over the first chunk of its run (read by
    /// it alone), and after a barrier lane 0 merges the lanes' lists in lane order into the row's top k. Then
    /// it picks the first (greedy) or draws as the CPU sampler does: p_i ∝ e^((l_i - l_0)/T), target = u·Σp,
    /// walking down the sorted list; u is draw <c>draw</c> of the row's SplitMix64 stream.
    /// </summary>
    public string SampleFromCandidates() => Request(
        "SampleFromCandidates",
        null,
        new[] { "ArrayView<float> values", "ArrayView<int> ids", "ArrayView<int> tokens", "int k", "int greedy", "float temperature", "ulong seed", "int draw" },
        "Sampling step 2: top k of the row from the chunk candidates (lanes merge runs of chunks, then lane 0 the lanes), then greedy or temperature sampling; one warp per row.",
        w =>
        {
            w.Line("var row = Grid.IdxX;");
            w.Line("var lane = Group.IdxX;");
            w.Line($"const int ChunksPerLane = (SampleChunks + {WarpSize - 1}) / {WarpSize};");
            w.Line("var best = LocalMemory.Allocate<float>(GpuModel.MaxTopK);");
            w.Line("var bestIds = LocalMemory.Allocate<int>(GpuModel.MaxTopK);");
            w.Line("var count = 0;");
            w.Line("var own = lane * ChunksPerLane;");
            using (w.Block("for (var c = own; c < XMath.Min(SampleChunks, own + ChunksPerLane); c++)"))
            {
                MergeChunk(w, "c");
            }

            using (w.Block("if (own < SampleChunks)"))
            {
                w.Line("long first = (((long)row * SampleChunks) + own) * GpuModel.MaxTopK;");
                using (w.Block("for (var i = 0; i < k; i++)"))
                {
                    w.Line("values[first + i] = i < count ? best[i] : float.NegativeInfinity;");
                    w.Line("ids[first + i] = i < count ? bestIds[i] : -1;");
                }
            }

            w.Line("Group.Barrier();");
            using (w.Block("if (lane != 0)"))
            {
                w.Line("return;");
            }

            w.Line("count = 0;");
            using (w.Block($"for (var c = 0; c < SampleChunks; c += ChunksPerLane)"))
            {
                MergeChunk(w, "c");
            }

            using (w.Block("if (count == 0)"))
            {
                w.Line("tokens[row] = 0; // every logit NaN: id 0, as the CPU's greedy pick");
                w.Line("return;");
            }

            using (w.Block("if (greedy != 0)"))
            {
                w.Line("tokens[row] = bestIds[0];");
                w.Line("return;");
            }

            w.Line("var top = best[0];");
            w.Line("double total = 0;");
            using (w.Block("for (var i = 0; i < count; i++)"))
            {
                w.Line("best[i] = XMath.Exp((best[i] - top) / temperature);");
                w.Line("total += best[i];");
            }

            w.Line("// Sampler's stream: state = seed ^ (0x5851F42D4C957F2D·(row + 1)), draw n is SplitMix64 output n + 1.");
            w.Line("var state = (seed ^ (0x5851F42D4C957F2DUL * (ulong)(row + 1))) + ((ulong)(draw + 1) * 0x9E3779B97F4A7C15UL);");
            w.Line("state = (state ^ (state >> 30)) * 0xBF58476D1CE4E5B9UL;");
            w.Line("state = (state ^ (state >> 27)) * 0x94D049BB133111EBUL;");
            w.Line("state ^= state >> 31;");
            w.Line("var target = (state >> 11) * (1.0 / 9007199254740992.0) * total;");
            w.Line("var chosen = bestIds[count - 1];");
            using (w.Block("for (var i = 0; i < count; i++)"))
            {
                w.Line("target -= best[i];");
                using (w.Block("if (target < 0)"))
                {
                    w.Line("chosen = bestIds[i];");
                    w.Line("break;");
                }
            }

            w.Line("tokens[row] = chosen;");
        });

    /// <summary>Inserts the valid candidates of chunk <paramref name="chunk"/> of the row into best/bestIds.</summary>
    private static void MergeChunk(SourceWriter w, string chunk)
    {
        w.Line($"long first = (((long)row * SampleChunks) + {chunk}) * GpuModel.MaxTopK;");
        using (w.Block("for (var i = 0; i < k; i++)"))
        {
            using (w.Block("if (ids[first + i] >= 0)"))
            {
                w.Line("count = InsertCandidate(best, bestIds, count, k, values[first + i], ids[first + i]);");
            }
        }
    }
}
