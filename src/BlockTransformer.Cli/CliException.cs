namespace BlockTransformer.Cli;

/// <summary>A user error: printed as one line on stderr, exit code 2.</summary>
internal sealed class CliException(string message) : Exception(message);
