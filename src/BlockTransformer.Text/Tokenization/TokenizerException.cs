namespace BlockTransformer.Text;

/// <summary>A tokenizer file that cannot be loaded, or text or ids it cannot handle; the message names the file and where.</summary>
public sealed class TokenizerException(string message) : Exception(message);
