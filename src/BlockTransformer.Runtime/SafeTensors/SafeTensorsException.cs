namespace BlockTransformer.Runtime;

/// <summary>A weights file that cannot be read or does not fit the model; the message says exactly why.</summary>
public sealed class SafeTensorsException : Exception
{
    public SafeTensorsException(string message)
        : base(message)
    {
    }
}
