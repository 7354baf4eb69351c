using System.Text.Json;
using BlockTransformer.Models;
using BlockTransformer.Runtime;

namespace BlockTransformer.Cli;

/// <summary>`bt list` and `bt info`: shapes, parameter counts and KV-cache sizes of compiled models.</summary>
internal static class InfoCommands
{
    public static int List()
    {
        foreach (var model in CompiledModels.All)
        {
            var info = model.Info;
            Console.WriteLine($"{info.Name,-31} {info.Kind.ToString().ToLowerInvariant(),-8} {Millions(info.TotalParameters),8} total {Millions(info.NonEmbeddingParameters),8} non-embedding");
        }

        return 0;
    }

    public static int Info(Arguments arguments)
    {
        var name = arguments.Positional.FirstOrDefault() ?? arguments.Value("--model");
        var format = arguments.Value("--format") ?? "text";
        var info = ModelCatalog.Find(name).Info;
        switch (format)
        {
            case "json":
                WriteJson(info);
                break;
            case "text":
                WriteText(info);
                break;
            default:
                throw new CliException($"--format must be text or json, got '{format}'.");
        }

        return 0;
    }

    private static void WriteText(ModelInfo info)
    {
        Console.WriteLine($"{info.Name} ({info.Kind.ToString().ToLowerInvariant()})");
        Console.WriteLine($"  vocab {info.VocabSize}, eos {info.EosId}, pad {info.PadId}, weights stored as {info.WeightDType}, kept as {info.MemoryDType}, KV cache {info.KvCacheDType}, computed in f32");
        if (info.BlockDecoder is not null)
        {
            Console.WriteLine($"  block length L_B = {info.BlockLength}, prefix R = {info.PrefixLength}, embedder lookup-concat ({info.BlockDecoder.Hidden / info.BlockLength} per token)");
            Console.WriteLine($"  block decoder: {Describe(info.BlockDecoder)}");
            Console.WriteLine($"  token decoder: {Describe(info.Decoder)}");
        }
        else
        {
            Console.WriteLine($"  decoder: {Describe(info.Decoder)}");
        }

        Console.WriteLine($"  parameters: {info.TotalParameters:N0} total, {info.NonEmbeddingParameters:N0} non-embedding");
        foreach (var (name, setting) in Settings)
        {
            var cost = CostModel.Generation(info, setting.PromptLength, setting.GenLength, 1, UnitPeaks);
            Console.WriteLine($"  cost, {name} at batch 1: prefill {cost.Prefill.Flops / 1e9:F1} GFLOP, {cost.Prefill.Bytes / 1e6:F0} MB read; decode {cost.Decode.Flops / setting.GenLength / 1e6:F1} MFLOP and {cost.Decode.Bytes / setting.GenLength / 1e6:F1} MB read per token");
        }

        Console.WriteLine($"  KV cache ({info.KvCacheDType}): {info.KvCacheBytesPerToken:N0} bytes per token, {info.KvCacheBytesPerBlock:N0} per block position");
        if (info.BlockDecoder is not null)
        {
            Console.WriteLine($"  token decoder cache: {info.TokenDecoderCacheBytes:N0} bytes per sequence, reset every block");
        }
    }

    private static void WriteJson(ModelInfo info)
    {
        using var json = JsonOutput.Create(indented: true);
        json.WriteStartObject();
        json.WriteString("name", info.Name);
        json.WriteString("kind", info.Kind.ToString().ToLowerInvariant());
        json.WriteNumber("vocab_size", info.VocabSize);
        json.WriteNumber("eos_id", info.EosId);
        json.WriteNumber("pad_id", info.PadId);
        json.WriteString("weight_dtype", info.WeightDType);
        json.WriteString("memory_dtype", info.MemoryDType);
        json.WriteString("kv_cache_dtype", info.KvCacheDType);
        json.WriteNumber("total_parameters", info.TotalParameters);
        json.WriteNumber("non_embedding_parameters", info.NonEmbeddingParameters);
        json.WriteNumber("embedding_parameters", info.EmbeddingParameters);
        json.WriteNumber("kv_cache_bytes_per_token", info.KvCacheBytesPerToken);
        json.WriteNumber("kv_cache_bytes_per_block", info.KvCacheBytesPerBlock);
        json.WriteStartObject("cost_batch_1");
        foreach (var (name, setting) in Settings)
        {
            var cost = CostModel.Generation(info, setting.PromptLength, setting.GenLength, 1, UnitPeaks);
            json.WriteStartObject(name.Replace('-', '_'));
            json.WriteNumber("prompt_len", setting.PromptLength);
            json.WriteNumber("gen_len", setting.GenLength);
            json.WriteNumber("prefill_flops", cost.Prefill.Flops);
            json.WriteNumber("prefill_weight_bytes", cost.Prefill.WeightBytes);
            json.WriteNumber("prefill_kv_bytes", cost.Prefill.KvBytes);
            json.WriteNumber("decode_flops", cost.Decode.Flops);
            json.WriteNumber("decode_weight_bytes", cost.Decode.WeightBytes);
            json.WriteNumber("decode_kv_bytes", cost.Decode.KvBytes);
            json.WriteEndObject();
        }

        json.WriteEndObject();
        if (info.BlockDecoder is not null)
        {
            json.WriteNumber("block_length", info.BlockLength);
            json.WriteNumber("prefix_length", info.PrefixLength);
            json.WriteNumber("token_decoder_cache_bytes", info.TokenDecoderCacheBytes);
            WriteDecoder(json, "block_decoder", info.BlockDecoder);
            WriteDecoder(json, "token_decoder", info.Decoder);
        }
        else
        {
            WriteDecoder(json, "decoder", info.Decoder);
        }

        json.WriteEndObject();
        json.Flush();
        Console.WriteLine();
    }

    private static void WriteDecoder(Utf8JsonWriter json, string name, DecoderShape shape)
    {
        json.WriteStartObject(name);
        json.WriteNumber("layers", shape.Layers);
        json.WriteNumber("hidden", shape.Hidden);
        json.WriteNumber("heads", shape.Heads);
        json.WriteNumber("kv_heads", shape.KvHeads);
        json.WriteNumber("head_dim", shape.HeadDim);
        json.WriteNumber("rotary_dims", shape.RotaryDims);
        json.WriteNumber("intermediate", shape.Intermediate);
        json.WriteNumber("max_context", shape.MaxContext);
        json.WriteBoolean("parallel_residual", shape.ParallelResidual);
        json.WriteEndObject();
    }

    /// <summary>The paper's two settings; `bt info` reports their cost model at batch 1 (FLOPs and bytes do not depend on the machine).</summary>
    private static readonly (string Name, BenchSetting Setting)[] Settings =
        [("prefill-heavy", BenchSetting.PrefillHeavy), ("decode-heavy", BenchSetting.DecodeHeavy)];

    private static readonly MachinePeaks UnitPeaks = new(1, 1);

    private static string Describe(DecoderShape s) =>
        $"{s.Layers} layers × {s.Hidden}, {s.Heads} heads of {s.HeadDim} ({s.KvHeads} K/V), FFN {s.Intermediate}, RoPE on {s.RotaryDims} dims, max context {s.MaxContext}";

    private static string Millions(long count) => $"{count / 1e6:F1}M";
}
