using BlockTransformer.Runtime;
using BlockTransformer.Text;
using Microsoft.Extensions.AI;

namespace BlockTransformer.Tests;

/// <summary>The text layer over tiny models with random weights: stop sequences, finish reasons, streaming, IChatClient.</summary>
public class TextModelTests
{
    private static readonly TextTokenizer Tokenizer = TextTokenizer.Load(TestTokenizer.Write());

    [Theory]
    [InlineData("tiny_text_block")]
    [InlineData("tiny_text_vanilla")]
    public void TextIsTheDecodeOfTheGeneratedIds(string name)
    {
        using var model = TestModels.Find(name).CreateRandom(3, TensorDType.F32);
        var text = new TextModel(TextGenerator.For(model), Tokenizer);
        var results = text.Complete(["In the beginning", "And God said"], Options(20));
        foreach (var result in results)
        {
            Assert.Equal(FinishReason.Length, result.FinishReason);
            Assert.Equal(20, result.GeneratedIds.Count);
            Assert.Equal(Tokenizer.Decode(result.GeneratedIds), result.Text);
        }

        Assert.Equal(Tokenizer.Encode("In the beginning"), results[0].PromptIds);
    }

    /// <summary>
    /// A stop text made of the end of one token's text and the start of the next one's: the result is the text
    /// before its first appearance, nothing of it is streamed, and the sequence stops there.
    /// </summary>
    [Theory]
    [InlineData("tiny_text_block")]
    [InlineData("tiny_text_vanilla")]
    public void StopSequencesSpanningTokensEndTheSequenceAndAreNotEmitted(string name)
    {
        using var model = TestModels.Find(name).CreateRandom(3, TensorDType.F32);
        var text = new TextModel(TextGenerator.For(model), Tokenizer);
        var free = text.Complete(["In the beginning"], Options(40))[0];
        var decoder = Tokenizer.CreateStreamingDecoder();
        var pieces = free.GeneratedIds.Select(decoder.Add).ToList(); // each token's text in context
        var boundary = Enumerable.Range(1, pieces.Count - 2).First(i => Plain(pieces[i]) && Plain(pieces[i + 1]));
        var stop = pieces[boundary][^1..] + pieces[boundary + 1][..1];
        var expected = free.Text[..free.Text.IndexOf(stop, StringComparison.Ordinal)];

        var streamed = new List<string>();
        var stopped = text.Complete(["In the beginning"], Options(40) with { StopSequences = ["never appears \u0001", stop] }, (_, piece) => streamed.Add(piece))[0];
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(expected, stopped.Text);
        Assert.Equal(expected, string.Concat(streamed));
        Assert.True(stopped.GeneratedIds.Count < 40, "the sequence must stop once the stop text is complete");
        Assert.Equal(free.GeneratedIds.Take(stopped.GeneratedIds.Count), stopped.GeneratedIds);
    }

    [Fact]
    public async Task StreamingGivesTheSameTextWithAFinalUpdate()
    {
        using var model = TestModels.Find("tiny_text_vanilla").CreateRandom(4, TensorDType.F32);
        var text = new TextModel(TextGenerator.For(model), Tokenizer);
        var expected = text.Complete(["the earth"], Options(16))[0];
        var updates = new List<TextUpdate>();
        await foreach (var update in text.StreamAsync("the earth", Options(16)))
        {
            updates.Add(update);
        }

        Assert.Equal(expected.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.FinishReason));
        Assert.Equal(FinishReason.Length, updates[^1].FinishReason);
        Assert.Equal((expected.PromptIds.Count, 16), (updates[^1].PromptTokens, updates[^1].GeneratedTokens));
    }

    [Fact]
    public void EmptyAndOverlongPromptsAreRefused()
    {
        using var model = TestModels.Find("tiny_text_vanilla").CreateRandom(4, TensorDType.F32);
        var text = new TextModel(TextGenerator.For(model), Tokenizer);
        Assert.Contains("empty after tokenization", Assert.Throws<ArgumentException>(() => text.Complete([string.Empty], Options(4))).Message);
        var longPrompt = string.Concat(Enumerable.Repeat("x 7 ", 100)); // 200 tokens, context 128
        Assert.Contains("max_context 128", Assert.Throws<ArgumentException>(() => text.Complete([longPrompt], Options(4))).Message);
    }

    [Fact]
    public async Task ChatClientAnswersStreamsAndReportsUsage()
    {
        using var model = TestModels.Find("tiny_text_block").CreateRandom(5, TensorDType.F32);
        var textModel = new TextModel(TextGenerator.For(model), Tokenizer);
        using IChatClient client = new TextChatClient(textModel);
        ChatMessage[] messages = [new(ChatRole.User, "Who made the heaven?")];
        var options = new ChatOptions { MaxOutputTokens = 12 };

        var response = await client.GetResponseAsync(messages, options);
        var prompt = ChatPromptFormat.Plain.Format(messages, null);
        Assert.Equal("User: Who made the heaven?\nAssistant:", prompt);
        var direct = textModel.Complete([prompt], new TextGenerationOptions { Generation = new GenerationOptions { MaxNewTokens = 12 }, StopSequences = ["\nUser:"] })[0];
        Assert.Equal(direct.Text.TrimStart(), response.Text);
        Assert.Equal(direct.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(Tokenizer.Encode(prompt).Length, response.Usage!.InputTokenCount);
        Assert.Equal(direct.GeneratedIds.Count, response.Usage.OutputTokenCount);

        var updates = await client.GetStreamingResponseAsync(messages, options).ToListAsync();
        Assert.Equal(response.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(response.FinishReason, updates[^1].FinishReason);
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single();
        Assert.Equal(response.Usage.OutputTokenCount, usage.Details.OutputTokenCount);
        Assert.Equal("tiny_text_block", client.GetService<ChatClientMetadata>()!.DefaultModelId);
    }

    [Fact]
    public async Task ConcurrentChatCallsEachGetTheirOwnAnswer()
    {
        using var model = TestModels.Find("tiny_text_vanilla").CreateRandom(6, TensorDType.F32);
        using var client = new TextChatClient(new TextModel(TextGenerator.For(model), Tokenizer));
        string[] questions = ["the light", "the waters", "the deep", "the earth"];
        var alone = new List<string>();
        foreach (var question in questions)
        {
            alone.Add((await client.GetResponseAsync([new(ChatRole.User, question)], new ChatOptions { MaxOutputTokens = 10 })).Text);
        }

        var together = await Task.WhenAll(questions.Select(q => client.GetResponseAsync([new(ChatRole.User, q)], new ChatOptions { MaxOutputTokens = 10 })));
        Assert.Equal(alone, together.Select(r => r.Text));
    }

    /// <summary>A piece whose first and last characters are whole ones (random weights also produce U+FFFD, a character like any other).</summary>
    private static bool Plain(string piece) => piece.Length > 0 && !char.IsSurrogate(piece[0]) && !char.IsSurrogate(piece[^1]);

    private static TextGenerationOptions Options(int maxNewTokens) =>
        new() { Generation = new GenerationOptions { MaxNewTokens = maxNewTokens, StopAtEos = false } };
}
