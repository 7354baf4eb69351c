using System.Globalization;
using BlockTransformer.Cli;
using BlockTransformer.Runtime;
using BlockTransformer.Text;

// `bt`: a thin command-line layer over the compiled models, the Runtime's generation API and the text layer.
// Output is culture-neutral: the process needs ICU (for tokenizer normalization) but prints numbers one way.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.DefaultThreadCurrentUICulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.CurrentUICulture = CultureInfo.InvariantCulture;

var device = new Flag("--device", "where to run: the generated CPU code (default), or the ILGPU kernels on CUDA or on ILGPU's CPU simulator (JIT build only)", "cpu|cuda|cpu-sim");
var model = new Flag("--model", "a compiled model; 'bt list' shows them", "NAME");
var weights = new Flag("--weights", "a safetensors checkpoint in the official key layout; default: seeded random weights", "FILE");
var weightsSeed = new Flag("--weights-seed", "seed of the random weights when no --weights is given. Default: 0", "S");
var tokenizer = new Flag("--tokenizer", "a Hugging Face tokenizer.json (byte-level BPE: GPT-2, GPT-NeoX / Pythia)", "FILE");
var format = (string values, string fallback) => new Flag("--format", $"output format. Default: {fallback}", values);
Flag[] sampling =
[
    new("--greedy", "pick the most likely token (the default when no sampling option is given)", Kind: FlagKind.Switch),
    new("--temperature", "sample with this temperature (> 0). Default: 1 once sampling", "T"),
    new("--top-k", "sample from the K most likely tokens, 1 ≤ K ≤ vocabulary", "K"),
    new("--top-p", "sample from the smallest set of tokens whose probability reaches P, 0 < P ≤ 1", "P"),
    new("--seed", "seed of the sampler. Default: 0", "S"),
];

var commands = new (string, string, IReadOnlyList<Flag>, Func<Arguments, int>, string?)[]
{
    ("list", "every compiled model with its parameter counts", [], _ => InfoCommands.List(), null),
    ("info", "a model's shapes, parameter counts, KV-cache bytes and cost model", [model, format("text|json", "text")], InfoCommands.Info, "NAME"),
    ("init-weights", "write seeded random weights in the official safetensors layout",
        [model, new("--out", "the safetensors file to write", "FILE"), new("--seed", "seed of the weights. Default: 0", "S"), new("--dtype", "dtype of the file. Default: the spec's weight_dtype", "f32|bf16|f16")],
        InitWeightsCommand.Run, null),
    ("generate", "continue prompts (text with --tokenizer, or token ids) and print what the model generates",
        [
            model, weights, weightsSeed, tokenizer,
            new("--prompt", "a prompt as text (needs --tokenizer); repeat it for a batch", "TEXT", FlagKind.Repeated),
            new("--prompt-file", "prompts as text, one per line (needs --tokenizer)", "FILE"),
            new("--prompt-ids", "a prompt as comma-separated token ids, e.g. \"1,2,3\"; repeat it for a batch", "IDS", FlagKind.Repeated),
            new("--stop", "end a sequence where this text appears (not printed; needs --tokenizer); repeatable", "TEXT", FlagKind.Repeated),
            new("--max-new-tokens", "tokens to generate per prompt at most. Default: 16", "N"),
            .. sampling,
            new("--positions", "token-decoder RoPE positions: as in training, or as the official generate(). Default: training", "training|reference"),
            format("text|json", "text"),
            new("--top-logits", "with --format json, the K highest [id, logit] pairs of every generated token. Default: 0", "K"),
            new("--keep-going-after-eos", "do not stop a sequence at EOS", Kind: FlagKind.Switch),
            device,
        ],
        GenerateCommand.Run, null),
    ("chat", "talk to a model: reads a line, streams the answer (an IChatClient over the model and tokenizer)",
        [model, weights, weightsSeed, tokenizer, new("--max-new-tokens", "tokens per answer at most. Default: 256", "N"), .. sampling],
        ChatCommand.Run, null),
    ("eval", "a text's loss, perplexity and bits per byte under a model, scored teacher-forced in windows",
        [
            model, weights, weightsSeed, tokenizer, new("--file", "the UTF-8 text to score, tokenized as one string (no BOS)", "FILE"),
            new("--window", "tokens per window, a multiple of the block length. Default: the largest within min(2048, the context)", "N"),
            new("--score-from", "score tokens at window positions ≥ K (compare models with the same K). Default: the block length (1 for vanilla)", "K"),
            format("text|json", "text"),
        ],
        EvalCommand.Run, null),
    ("tokenize", "text to token ids",
        [tokenizer, new("--text", "the text to tokenize", "TEXT"), new("--file", "a UTF-8 file tokenized as one string, newlines included", "FILE"), format("text|json", "text")],
        TokenizeCommands.Tokenize, null),
    ("detokenize", "token ids to text", [tokenizer, new("--ids", "comma-separated token ids, e.g. \"1,2,3\"", "IDS")], TokenizeCommands.Detokenize, null),
    ("tokenizer-train", "train a byte-level BPE tokenizer.json (GPT-2 split, <|endoftext|> at id 0) on a text",
        [new("--corpus", "UTF-8 text to train on", "FILE"), new("--vocab", "tokens in the vocabulary, at least 257. Default: 4096", "N"), new("--out", "the tokenizer.json to write", "FILE")],
        TokenizeCommands.Train, null),
    ("bench", "throughput the paper's way: seeded random weights, random prompts, EOS off, greedy",
        [
            model, new("--pair", "two models run alternately, with their throughput ratio", "A:B"), new("--sweep", "several models run alternately", "A,B,…"),
            new("--setting", "the paper's settings: prefill-heavy (2048 + 128), decode-heavy (128 + 2048) or both. Default: all", "prefill-heavy|decode-heavy|all"),
            new("--prompt-len", "prompt tokens instead of a setting. Default: 128", "N"), new("--gen-len", "generated tokens instead of a setting. Default: 128", "N"),
            new("--batch", "batch sizes, comma-separated. Default: 1,8,64", "LIST"), new("--memory-budget", "run the largest batch whose measured memory fits, e.g. 8GiB", "SIZE"),
            new("--repeat", "timed runs per point (the median is reported). Default: 3", "N"), new("--seed", "seed of the prompts. Default: 0", "S"),
            format("table|json|csv", "table"),
            new("--calibrate", "measure this machine's FMA peak and bandwidth (cached) and exit", Kind: FlagKind.Switch),
            new("--peak-gflops", "the FMA peak the cost model uses instead of the calibration", "X"), new("--bandwidth-gbs", "the bandwidth the cost model uses instead of the calibration", "Y"),
            device,
        ],
        BenchCommand.Run, null),
};

return CommandLine.Run(CommandLine.Build(commands), args, e =>
    e is CliException or ArgumentException or SafeTensorsException or TokenizerException or IOException or UnauthorizedAccessException || Backend.IsUserError(e));
