using BlockTransformer.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace BlockTransformer.Gpu;

/// <summary>
/// What every generated GPU model shares: its device, its uploaded weights, the LM head and on-device
/// sampling. Generated types derive from <see cref="GpuBlockModel"/> or <see cref="GpuVanillaModel"/>.
/// </summary>
public abstract class GpuModel : ILanguageModel
{
    /// <summary>Rows of a linear kernel per thread: activation buffers are padded to a multiple of it.</summary>
    public const int RowTile = 8;

    /// <summary>Fewest inputs a linear kernel's thread sums before its partial result is added to the others'.</summary>
    public const int MinInputSlice = 32;

    /// <summary>Threads a linear kernel aims for when it splits its inputs: enough to hide memory latency on a large GPU.</summary>
    public const int TargetLinearThreads = 1 << 16;

    /// <summary>
    /// Rows from which a linear layer runs the shared-memory tiled GEMM (64 × 64 blocks) instead of partial
    /// products over input slices: one block of rows reads each weight once and every staged input 64 times.
    /// Prefill is far above it; decode batches of 64 and more reach it. Not yet tuned on a GPU (see README).
    /// </summary>
    public const int TiledMinRows = 64;

    /// <summary>
    /// Threads per group of the implicitly grouped kernels (one thread per output or row), along their first
    /// index. ILGPU's automatic choice was 640–1024 (ncu, H200): a 768-output launch with 8 input slices ran as
    /// 16 groups on 16 of 132 SMs, and a 256-output launch left ¾ of each group idle. With two warps per group a
    /// launch spreads over the SMs and wastes at most 63 threads per row; 32 resident groups of 64 still fill an
    /// SM. (Also the largest group the simulator runs.)
    /// </summary>
    public const int ImplicitGroupSize = 64;

    /// <summary>Most candidates on-device top-k sampling keeps per row.</summary>
    public const int MaxTopK = 64;

    private readonly List<IDisposable> owned = [];
    private readonly Action<Index2D, ArrayView<float>, int, int, ArrayView<float>, int, int> copyRows;

    protected GpuModel(GpuDevice device, ModelInfo info)
    {
        Device = device;
        Info = info;
        copyRows = device.Accelerator.LoadImplicitlyGroupedStreamKernel<Index2D, ArrayView<float>, int, int, ArrayView<float>, int, int>(CopyRowsKernel, ImplicitGroupSize);
    }

    public GpuDevice Device { get; }

    public ModelInfo Info { get; }

    public static int PaddedRows(int rows) => (rows + RowTile - 1) / RowTile * RowTile;

    /// <summary>
    /// Slices of the inputs a linear layer is split into for <paramref name="tiles"/> tiles of rows: 1 for
    /// large batches; for few rows, doubled while slices keep <see cref="MinInputSlice"/> inputs and the threads
    /// (output, tile, slice) stay under <see cref="TargetLinearThreads"/>. At batch 1 one thread per output
    /// walking all inputs is a chain of memory latencies; slices shorten it and multiply the threads in flight.
    /// </summary>
    public static int InputSplits(int tiles, int outputs, int inputs)
    {
        var splits = 1;
        while (2 * splits * MinInputSlice <= inputs && (long)tiles * outputs * splits < TargetLinearThreads)
        {
            splits *= 2;
        }

        return splits;
    }

    /// <summary>logits[r] = embed_out · hidden[r] on the device, for <paramref name="rows"/> rows.</summary>
    public abstract void LmHead(ArrayView<float> hidden, int rows, ArrayView<float> logits, GpuScratch scratch);

    /// <summary>Chooses one token per row from <paramref name="logits"/> into <paramref name="tokens"/>, on the device.</summary>
    public abstract void Sample(ArrayView<float> logits, int rows, DeviceSampling sampling, ArrayView<int> tokens, GpuScratch scratch);

    /// <summary>destination[destinationFirst + r] = source[sourceFirst + r·sourceStride] for r &lt; rows; rows of <paramref name="width"/> floats.</summary>
    public void CopyRows(ArrayView<float> source, int sourceFirst, int sourceStride, ArrayView<float> destination, int destinationFirst, int rows, int width) =>
        copyRows(new Index2D(width, rows), source, sourceFirst, sourceStride, destination, destinationFirst, width);

    /// <summary>Host-memory LM head (the <see cref="ILanguageModel"/> contract): upload, run, download.</summary>
    public void LmHead(ReadOnlySpan<float> hidden, int rows, Span<float> logits)
    {
        var width = Info.Decoder.Hidden;
        Lookup.CheckRows(hidden.Length, rows, width, nameof(hidden));
        Lookup.CheckRows(logits.Length, rows, Info.VocabSize, nameof(logits));
        using var input = Device.Allocate<float>((long)PaddedRows(rows) * width, "LM head input");
        using var output = Device.Allocate<float>((long)rows * Info.VocabSize, "logits");
        using var scratch = new GpuScratch(Device);
        input.View.SubView(0, hidden.Length).CopyFromCPU(hidden);
        LmHead(input.View, rows, output.View, scratch);
        output.View.CopyToCPU(logits);
    }

    /// <summary>Uploads a 1-D tensor (LayerNorm, bias, table) as it is, and frees the host copy.</summary>
    protected ArrayView<float> Upload(AlignedBuffer tensor, string name)
    {
        using (tensor)
        {
            var buffer = Own(Device.Allocate<float>(tensor.Length, name));
            buffer.View.CopyFromCPU(tensor.Span);
            return buffer.View;
        }
    }

    /// <summary>
    /// Uploads a linear layer's [out, in] weight transposed to [in, out], so the threads of a warp, which
    /// compute consecutive outputs, read consecutive floats of each input row.
    /// </summary>
    protected ArrayView<float> UploadTransposed(AlignedBuffer tensor, int outputs, int inputs, string name)
    {
        using (tensor)
        {
            var source = tensor.Span;
            var transposed = new float[(long)outputs * inputs];
            for (var o = 0; o < outputs; o++)
            {
                for (var i = 0; i < inputs; i++)
                {
                    transposed[((long)i * outputs) + o] = source[(o * inputs) + i];
                }
            }

            var buffer = Own(Device.Allocate<float>(transposed.Length, name));
            buffer.View.CopyFromCPU(transposed);
            return buffer.View;
        }
    }

    private DeviceBuffer<float> Own(DeviceBuffer<float> buffer)
    {
        owned.Add(buffer);
        return buffer;
    }

    public void Dispose()
    {
        foreach (var item in owned)
        {
            item.Dispose();
        }

        owned.Clear();
        GC.SuppressFinalize(this);
    }

    private static void CopyRowsKernel(Index2D index, ArrayView<float> source, int sourceFirst, int sourceStride, ArrayView<float> destination, int destinationFirst, int width)
    {
        destination[((long)(destinationFirst + index.Y) * width) + index.X] = source[((long)(sourceFirst + (index.Y * sourceStride)) * width) + index.X];
    }
}

/// <summary>The steps of a Block Transformer on the device, named as on the CPU (<see cref="IBlockTransformerModel"/>).</summary>
public abstract class GpuBlockModel(GpuDevice device, ModelInfo info) : GpuModel(device, info)
{
    /// <summary>Embedder: e = concat(E[t_1], …, E[t_LB]) for <paramref name="rows"/> blocks of L_B ids.</summary>
    public abstract void Embed(ArrayView<int> blockTokens, int rows, ArrayView<float> blockVectors);

    public abstract void BlockDecoder(ArrayView<float> hidden, DeviceRows rows, GpuKvCache cache, GpuScratch scratch);

    /// <summary>Expansion: p = W_exp·ctx + b_exp, R prefix rows per context row.</summary>
    public abstract void Expand(ArrayView<float> context, int rows, ArrayView<float> prefix, GpuScratch scratch);

    public abstract void TokenEmbed(ArrayView<int> tokens, int rows, ArrayView<float> output);

    public abstract void TokenDecoder(ArrayView<float> hidden, DeviceRows rows, GpuKvCache cache, GpuScratch scratch);
}

/// <summary>A vanilla GPT-NeoX model on the device.</summary>
public abstract class GpuVanillaModel(GpuDevice device, ModelInfo info) : GpuModel(device, info)
{
    public abstract void Embed(ArrayView<int> tokens, int rows, ArrayView<float> output);

    public abstract void Decoder(ArrayView<float> hidden, DeviceRows rows, GpuKvCache cache, GpuScratch scratch);
}

/// <summary>
/// Sampling as the device kernels take it. Greedy is top-1. Otherwise temperature and top-k (1..64) with the
/// CPU <see cref="Sampler"/>'s random stream: draw n of sequence s is SplitMix64 output n+1 from seed
/// Seed ^ (0x5851F42D4C957F2D·(s+1)), so the GPU picks what the CPU picks from the same logits.
/// </summary>
public readonly record struct DeviceSampling(bool Greedy, int TopK, float Temperature, ulong Seed, int Draw)
{
    public static DeviceSampling From(SamplingOptions options, int draw)
    {
        options.Validate();
        if (options.Greedy)
        {
            return new DeviceSampling(true, 1, 1f, options.Seed, draw);
        }

        if (options.TopP < 1)
        {
            throw new GpuException($"top-p sampling (top-p {options.TopP}) is not available on the GPU backend; use top-k and temperature, or the CPU.");
        }

        if (options.TopK is < 1 or > GpuModel.MaxTopK)
        {
            throw new GpuException($"on the GPU, sampling needs a top-k from 1 to {GpuModel.MaxTopK}, got {(options.TopK == 0 ? "none" : options.TopK.ToString(System.Globalization.CultureInfo.InvariantCulture))}.");
        }

        return new DeviceSampling(false, options.TopK, options.Temperature, options.Seed, draw);
    }
}
