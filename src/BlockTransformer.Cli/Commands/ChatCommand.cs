using BlockTransformer.Text;
using Microsoft.Extensions.AI;

namespace BlockTransformer.Cli;

/// <summary>
/// `bt chat`: an interactive loop over <see cref="TextChatClient"/>, for trying a model by hand. Each line read is
/// a user message; the answer streams as it is generated; the whole conversation is the next prompt. An empty
/// line or end of input ends the chat; Ctrl+C stops the answer under way.
/// </summary>
internal static class ChatCommand
{
    public static int Run(Arguments arguments)
    {
        var descriptor = ModelCatalog.Find(arguments.Value("--model"));
        var weights = arguments.ExistingFile("--weights");
        var seed = arguments.ULong("--weights-seed", 0);
        var tokenizer = Inputs.RequiredTokenizer(arguments, descriptor.Info);
        var maxTokens = arguments.Int("--max-new-tokens", 256, min: 1);
        var sampling = GenerateCommand.Sampler(arguments, descriptor.Info.VocabSize);
        using var backend = Backend.Open(null);
        using var model = Inputs.Model(backend, descriptor, weights, seed);
        using var client = new TextChatClient(new TextModel(backend.Generator(model, copyLogits: false), tokenizer));
        var options = new ChatOptions
        {
            MaxOutputTokens = maxTokens,
            Temperature = sampling.Greedy ? null : sampling.Temperature,
            TopK = sampling.Greedy || sampling.TopK == 0 ? null : sampling.TopK,
            TopP = sampling.Greedy || sampling.TopP >= 1 ? null : sampling.TopP,
            Seed = (long)sampling.Seed,
        };
        var history = new List<ChatMessage>();
        Console.Error.WriteLine($"bt: chatting with {descriptor.Info.Name}; an empty line ends the chat.");
        while (true)
        {
            if (!Console.IsInputRedirected)
            {
                Console.Write("> ");
            }

            var line = Console.ReadLine();
            if (string.IsNullOrWhiteSpace(line))
            {
                return 0;
            }

            history.Add(new ChatMessage(ChatRole.User, line));
            using var interrupt = new ConsoleInterrupt();
            var answer = new System.Text.StringBuilder();
            try
            {
                foreach (var update in client.GetStreamingResponseAsync(history, options, interrupt.Token).ToBlockingEnumerable())
                {
                    Console.Write(update.Text);
                    answer.Append(update.Text);
                }
            }
            catch (OperationCanceledException) when (interrupt.Requested)
            {
                Console.Write(" [stopped]");
            }

            Console.WriteLine();
            history.Add(new ChatMessage(ChatRole.Assistant, answer.ToString()));
        }
    }
}
