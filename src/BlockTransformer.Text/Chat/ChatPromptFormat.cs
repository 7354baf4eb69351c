using System.Text;
using Microsoft.Extensions.AI;

namespace BlockTransformer.Text;

/// <summary>
/// Turns a conversation into the prompt text a base model continues. The paper's models have no chat
/// template, so <see cref="Plain"/> writes one line per message, <c>Role: text</c>, and ends with
/// <c>Assistant:</c> for the model to continue; its stop sequence <c>"\nUser:"</c> ends the answer where
/// the model would start writing the user's next turn.
/// </summary>
public sealed record ChatPromptFormat(Func<IEnumerable<ChatMessage>, string?, string> Format, IReadOnlyList<string> StopSequences)
{
    /// <summary>
    /// <code>
    /// System: {instructions}
    /// User: {text}
    /// Assistant: {text}
    /// User: {text}
    /// Assistant:
    /// </code>
    /// Roles other than system, user and assistant keep their own name (<c>Tool: …</c>); a message's text is its text contents joined.
    /// </summary>
    public static ChatPromptFormat Plain { get; } = new(FormatPlain, ["\nUser:"]);

    private static string FormatPlain(IEnumerable<ChatMessage> messages, string? instructions)
    {
        var prompt = new StringBuilder();
        if (!string.IsNullOrEmpty(instructions))
        {
            prompt.Append("System: ").Append(instructions).Append('\n');
        }

        foreach (var message in messages)
        {
            var role = message.Role.Value;
            prompt.Append(role.Length == 0 ? role : char.ToUpperInvariant(role[0]) + role[1..]).Append(": ").Append(message.Text).Append('\n');
        }

        return prompt.Append("Assistant:").ToString();
    }
}
