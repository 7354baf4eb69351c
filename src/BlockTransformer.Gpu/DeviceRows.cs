using ILGPU;
using ILGPU.Runtime;

namespace BlockTransformer.Gpu;

/// <summary>
/// The device twin of <see cref="Runtime.DecoderRows"/>: for each row of a decoder call, its sequence,
/// its KV-cache slot and its RoPE position. Filled on the host, uploaded once per decoder call (not per layer).
/// </summary>
public sealed class DeviceRows : IDisposable
{
    private readonly GpuDevice device;

    /// <summary>Sequences at [0, capacity), slots at [capacity, 2·capacity), positions after: the device buffer's layout, so one copy uploads all three.</summary>
    private int[] table = new int[3 * 16];
    private DeviceBuffer<int>? buffer;

    public DeviceRows(GpuDevice device) => this.device = device;

    public int Count { get; private set; }

    /// <summary>The highest cache slot of any row: attention kernels are launched for slots 0..MaxSlot.</summary>
    public int MaxSlot { get; private set; }

    public ArrayView<int> Sequences => Part(0);

    public ArrayView<int> Slots => Part(1);

    public ArrayView<int> Positions => Part(2);

    private int Capacity => table.Length / 3;

    public void Clear()
    {
        Count = 0;
        MaxSlot = 0;
    }

    public void Add(int sequence, int slot, int position)
    {
        if (Count == Capacity)
        {
            var grown = new int[2 * table.Length];
            for (var part = 0; part < 3; part++)
            {
                Array.Copy(table, part * Capacity, grown, part * 2 * Capacity, Count);
            }

            table = grown;
        }

        table[Count] = sequence;
        table[Capacity + Count] = slot;
        table[(2 * Capacity) + Count] = position;
        MaxSlot = Math.Max(MaxSlot, slot);
        Count++;
    }

    /// <summary>Copies the rows to the device in one transfer.</summary>
    public void Upload()
    {
        if (buffer is null || buffer.Length != table.Length)
        {
            buffer?.Dispose();
            buffer = device.Allocate<int>(table.Length, "decoder row table");
        }

        buffer.View.CopyFromCPU(table);
    }

    private ArrayView<int> Part(int index) =>
        buffer is null ? throw new InvalidOperationException("rows were not uploaded.") : buffer.View.SubView((long)index * Capacity, Count);

    public void Dispose() => buffer?.Dispose();
}

/// <summary>
/// K and V of one decoder stack for a whole batch, laid out [layer][sequence][slot][K/V head][head dim]
/// so a kernel lane reading one head's vector reads consecutive elements: floats, or bf16 bits
/// (kv_cache_dtype "bf16", half the device memory) through <see cref="KeysBf16"/> and <see cref="ValuesBf16"/>.
/// </summary>
public sealed class GpuKvCache : IDisposable
{
    private readonly DeviceBuffer<float>? keys;
    private readonly DeviceBuffer<float>? values;
    private readonly DeviceBuffer<ushort>? keysBf16;
    private readonly DeviceBuffer<ushort>? valuesBf16;

    public GpuKvCache(GpuDevice device, int layers, int batch, int capacity, int kvDim, bool bf16, string what)
    {
        Layers = layers;
        Batch = batch;
        Capacity = capacity;
        KvDim = kvDim;
        var length = (long)layers * batch * capacity * kvDim;
        device.EnsureFits(2 * length * (bf16 ? sizeof(ushort) : sizeof(float)), $"{what} KV cache ({layers} layers × batch {batch} × {capacity} positions × {kvDim} × K and V, {(bf16 ? "bf16" : "f32")})");
        if (bf16)
        {
            keysBf16 = device.Allocate<ushort>(length, what + " K cache");
            valuesBf16 = device.Allocate<ushort>(length, what + " V cache");
        }
        else
        {
            keys = device.Allocate<float>(length, what + " K cache");
            values = device.Allocate<float>(length, what + " V cache");
        }
    }

    public int Layers { get; }

    public int Batch { get; }

    public int Capacity { get; }

    public int KvDim { get; }

    public ArrayView<float> Keys => View(keys, "f32");

    public ArrayView<float> Values => View(values, "f32");

    public ArrayView<ushort> KeysBf16 => View(keysBf16, "bf16");

    public ArrayView<ushort> ValuesBf16 => View(valuesBf16, "bf16");

    /// <summary>Offset of layer <paramref name="layer"/>'s block in the key and value views.</summary>
    public long LayerOffset(int layer) => (long)layer * Batch * Capacity * KvDim;

    public void Dispose()
    {
        keys?.Dispose();
        values?.Dispose();
        keysBf16?.Dispose();
        valuesBf16?.Dispose();
    }

    private static ArrayView<T> View<T>(DeviceBuffer<T>? buffer, string dtype)
        where T : unmanaged =>
        buffer is null ? throw new InvalidOperationException($"This KV cache does not hold {dtype} elements.") : buffer.View;
}

/// <summary>Per-call activation buffers, grown on demand and reused (no allocation once warm).</summary>
public sealed class GpuScratch : IDisposable
{
    private readonly GpuDevice device;
    private readonly DeviceBuffer<float>?[] buffers = new DeviceBuffer<float>?[8];
    private DeviceBuffer<int>? ids;

    public GpuScratch(GpuDevice device) => this.device = device;

    public ArrayView<float> Get(int slot, long length)
    {
        var buffer = buffers[slot];
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = buffers[slot] = device.Allocate<float>(length, "activations");
        }

        return buffer.View.SubView(0, length);
    }

    /// <summary>The one integer buffer (token ids of sampling candidates).</summary>
    public ArrayView<int> GetIds(long length)
    {
        if (ids is null || ids.Length < length)
        {
            ids?.Dispose();
            ids = device.Allocate<int>(length, "sampling candidates");
        }

        return ids.View.SubView(0, length);
    }

    public void Dispose()
    {
        foreach (var buffer in buffers)
        {
            buffer?.Dispose();
        }

        ids?.Dispose();
    }
}
