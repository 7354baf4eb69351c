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

    public static int Info(string[] args)
    {
        var arguments = new Arguments(args, new HashSet<string>());
        var name = arguments.Positional.FirstOrDefault() ?? arguments.Value("--model");
        var format = arguments.Value("--format") ?? "text";
        arguments.RejectUnknown("info");
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
        Console.WriteLine($"  vocab {info.VocabSize}, eos {info.EosId}, pad {info.PadId}, weights stored as {info.WeightDType}, computed in f32");
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
        Console.WriteLine($"  KV cache (f32): {info.KvCacheBytesPerToken:N0} bytes per token, {info.KvCacheBytesPerBlock:N0} per block position");
        if (info.BlockDecoder is not null)
        {
            Console.WriteLine($"  token decoder cache: {info.TokenDecoderCacheBytes:N0} bytes per sequence, reset every block");
        }
    }

    private static void WriteJson(ModelInfo info)
    {
        using var json = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("name", info.Name);
        json.WriteString("kind", info.Kind.ToString().ToLowerInvariant());
        json.WriteNumber("vocab_size", info.VocabSize);
        json.WriteNumber("eos_id", info.EosId);
        json.WriteNumber("pad_id", info.PadId);
        json.WriteString("weight_dtype", info.WeightDType);
        json.WriteNumber("total_parameters", info.TotalParameters);
        json.WriteNumber("non_embedding_parameters", info.NonEmbeddingParameters);
        json.WriteNumber("embedding_parameters", info.EmbeddingParameters);
        json.WriteNumber("kv_cache_bytes_per_token", info.KvCacheBytesPerToken);
        json.WriteNumber("kv_cache_bytes_per_block", info.KvCacheBytesPerBlock);
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

    private static string Describe(DecoderShape s) =>
        $"{s.Layers} layers × {s.Hidden}, {s.Heads} heads of {s.HeadDim} ({s.KvHeads} K/V), FFN {s.Intermediate}, RoPE on {s.RotaryDims} dims, max context {s.MaxContext}";

    private static string Millions(long count) => $"{count / 1e6:F1}M";
}
